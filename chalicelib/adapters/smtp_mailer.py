"""Mailer over SMTP, for self-hosting with an organisation's own mail relay."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.utils import parseaddr

from chalicelib.adapters.mime_message import build_mime
from chalicelib.ports import MailMessage

logger = logging.getLogger(__name__)


class SmtpMailer:
    """One SMTP connection per message: activation mail is rare, a pool would only go stale.

    Logs carry the relay's host and port only, never the body, the recipient or the password.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._user = user
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMailer(host={self._host!r}, port={self._port}, user={self._user!r})"

    def send(self, message: MailMessage) -> None:
        mime = build_mime(message, self._sender)
        envelope_from = parseaddr(self._sender)[1]
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            smtp.ehlo()
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self._user:
                smtp.login(self._user, self._password or "")
            smtp.send_message(mime, from_addr=envelope_from, to_addrs=[message.to])
        logger.info("mail sent via SMTP %s:%d", self._host, self._port)

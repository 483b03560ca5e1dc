"""Mailer over SMTP, for self-hosting with an organisation's own mail relay."""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import ssl
from email.utils import parseaddr

from chalicelib.adapters.mime_message import build_mime
from chalicelib.ports import MailMessage

logger = logging.getLogger(__name__)


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or the name localhost: traffic that never leaves the machine."""
    name = host.strip().rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class SmtpMailer:
    """One SMTP connection per message: activation mail is rare, a pool would only go stale.

    Logs carry the relay's host and port only, never the body, the recipient or the password.
    A login (``user``) needs ``starttls`` unless the relay is on loopback: credentials never
    cross a network in clear.
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
        if user and not starttls and not is_loopback_host(host):
            raise ValueError(
                f"refusing to send SMTP credentials in clear to {host}: enable STARTTLS "
                "(BOCAGE_SMTP_STARTTLS=true) or use a relay on loopback"
            )
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

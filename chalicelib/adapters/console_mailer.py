"""Mailer that keeps mail on disk instead of sending it: one machine, no relay.

Each message is written whole (the same MIME bytes SMTP or SES would send) as an
``.eml`` file, readable only by the owner, in an outbox directory; the stream gets
one line naming the recipient and the file. The stream is the server's log, so
it never carries a subject, a body or an activation code.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import TextIO

from chalicelib.adapters.mime_message import build_mime
from chalicelib.ports import MailMessage

DEFAULT_SENDER = "Bocage <no-reply@bocage.localhost>"


class ConsoleMailer:
    """Save each mail as ``<outbox>/<time>-<random>.eml`` (mode 0600), open it with any mail client.

    The stream defaults to whatever ``sys.stderr`` is at send time, so redirection
    and test capture keep working.
    """

    def __init__(self, outbox: str | Path, stream: TextIO | None = None, *, sender: str = DEFAULT_SENDER):
        self._outbox = Path(outbox)
        self._stream = stream
        self._sender = sender

    def send(self, message: MailMessage) -> None:
        raw = build_mime(message, self._sender).as_bytes()  # refuses CR/LF in headers first
        self._outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._outbox / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(f"mail to {message.to} saved in {path}\n")
        stream.flush()

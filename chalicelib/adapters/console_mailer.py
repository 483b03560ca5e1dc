"""Mailer that prints instead of sending: one machine, no relay, the operator reads the link."""

from __future__ import annotations

import sys
from typing import TextIO

from chalicelib.ports import MailMessage

RULE = "=" * 72


class ConsoleMailer:
    """Write To, Subject and the text body to a stream; attachments are only named, never written.

    The stream defaults to whatever ``sys.stderr`` is at send time, so redirection
    and test capture keep working.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, message: MailMessage) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        lines = [RULE, f"To: {message.to}", f"Subject: {message.subject}"]
        if message.attachments:
            names = ", ".join(attachment.filename for attachment in message.attachments)
            lines.append(f"Attachments (not shown): {names}")
        lines += ["", message.text.rstrip("\n"), RULE, ""]
        stream.write("\n".join(lines))
        stream.flush()

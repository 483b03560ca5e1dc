"""Mailer over Amazon SES (SendRawEmail), the production mailer on Lambda.

SendRawEmail rather than SendEmail because only raw messages carry inline
images (the activation QR code) and attachments.
"""

from __future__ import annotations

import logging
from email import policy
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING

from chalicelib.adapters.mime_message import build_mime
from chalicelib.ports import MailMessage

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

logger = logging.getLogger(__name__)


class SesMailer:
    """Send through an SES client; SES errors (e.g. MessageRejected) propagate as botocore ClientError."""

    def __init__(self, sender: str, client: SESClient) -> None:
        self._sender = sender
        self._client = client

    def send(self, message: MailMessage) -> None:
        raw = build_mime(message, self._sender).as_bytes(policy=policy.SMTP)
        # Source must be ASCII: formataddr RFC 2047-encodes a non-ASCII display name.
        source = formataddr(parseaddr(self._sender), charset="utf-8")
        response = self._client.send_raw_email(
            Source=source,
            Destinations=[message.to],
            RawMessage={"Data": raw},
        )
        # Only the SES id: recipients and bodies stay out of the logs.
        logger.info("mail sent via SES", extra={"ses_message_id": response["MessageId"]})

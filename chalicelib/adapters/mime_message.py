"""The one MIME builder shared by the SES and SMTP mailers, so both send the same bytes.

Shape: multipart/mixed [ multipart/alternative [ text/plain,
multipart/related [ text/html, inline images ] ], attachments ], each level
only when needed. The default policy refuses CR/LF in header values, so a
subject or address cannot inject headers.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from chalicelib.ports import Attachment, MailMessage

_FALLBACK_TYPE = ("application", "octet-stream")


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.strip().lower().partition("/")
    if not maintype or not subtype or maintype == "multipart":
        return _FALLBACK_TYPE
    return maintype, subtype


def _content_id(inline_id: str) -> str:
    """The Content-ID header value: the HTML says ``cid:x``, the header says ``<x>``."""
    return f"<{inline_id.strip().strip('<>')}>"


def build_mime(message: MailMessage, sender: str) -> EmailMessage:
    """Build the full message; inline images go with the HTML, or as attachments when there is none."""
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    mime["Message-ID"] = make_msgid(domain=domain)
    mime.set_content(message.text)

    inline: list[Attachment] = []
    attached: list[Attachment] = []
    for attachment in message.attachments:
        has_html_home = bool(attachment.inline_id) and message.html is not None
        (inline if has_html_home else attached).append(attachment)

    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
        html_part = mime.get_body(preferencelist=("html",))
        if html_part is None:  # cannot happen: we just added it
            raise RuntimeError("HTML part missing after add_alternative")
        for attachment in inline:
            maintype, subtype = _split_type(attachment.content_type)
            html_part.add_related(
                attachment.data,
                maintype=maintype,
                subtype=subtype,
                cid=_content_id(attachment.inline_id or ""),
                disposition="inline",
                filename=attachment.filename,
            )

    for attachment in attached:
        maintype, subtype = _split_type(attachment.content_type)
        mime.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
        )
    return mime

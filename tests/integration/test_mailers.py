"""The mailers against real protocol peers: moto's SES, a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import io
import smtplib
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.activation_qr import qr_png
from chalicelib.adapters.console_mailer import ConsoleMailer
from chalicelib.adapters.ses_mailer import SesMailer
from chalicelib.adapters.smtp_mailer import SmtpMailer
from chalicelib.ports import Attachment, MailMessage

REGION = "eu-west-3"
SENDER = "Bocage <no-reply@bocage.example.org>"
RECIPIENT = "camille@example.net"
ACTIVATION_URL = "https://bocage.example.org/activate#invite=abc123"
PNG = qr_png(ACTIVATION_URL)


def activation_message(**overrides: Any) -> MailMessage:
    fields: dict[str, Any] = {
        "to": RECIPIENT,
        "subject": "Your Bocage invitation",
        "text": f"Open {ACTIVATION_URL} on your phone.",
        "html": f'<p>Scan this code: <img src="cid:qr" alt="QR"></p><p>{ACTIVATION_URL}</p>',
        "attachments": (Attachment("activation.png", "image/png", PNG, inline_id="qr"),),
    }
    fields.update(overrides)
    return MailMessage(**fields)


def parse(raw: bytes | str) -> EmailMessage:
    data = raw.encode("ascii") if isinstance(raw, str) else raw
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def inline_part(message: EmailMessage, cid: str) -> EmailMessage:
    for part in message.walk():
        if part.get("Content-ID") == f"<{cid}>":
            assert isinstance(part, EmailMessage)
            return part
    raise AssertionError(f"no part with Content-ID <{cid}>")


# --- SES, through moto --------------------------------------------------------------------------


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("ses", region_name=REGION)


def test_ses_sends_raw_mime_with_inline_png(ses: Any) -> None:
    ses.verify_email_identity(EmailAddress="no-reply@bocage.example.org")
    SesMailer(SENDER, ses).send(activation_message())

    sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert len(sent) == 1
    assert RECIPIENT in sent[0].destinations
    raw = sent[0].raw_data
    assert "Subject: Your Bocage invitation" in raw
    assert "image/png" in raw
    message = parse(raw)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and ACTIVATION_URL in body.get_content()
    assert inline_part(message, "qr").get_content() == PNG
    assert ses.get_send_quota()["SentLast24Hours"] >= 1


def test_ses_unverified_sender_is_rejected(ses: Any) -> None:
    with pytest.raises(ClientError) as caught:
        SesMailer(SENDER, ses).send(activation_message())
    assert caught.value.response["Error"]["Code"] == "MessageRejected"
    assert "no-reply@bocage.example.org" in caught.value.response["Error"]["Message"]
    assert ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages == []


# --- SMTP, against a real aiosmtpd server on loopback ---------------------------------------------


class Collector:
    """aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_smtp_delivers_text_html_and_inline_png(smtp_server: tuple[Collector, int]) -> None:
    handler, port = smtp_server
    SmtpMailer("127.0.0.1", port, SENDER, timeout=5).send(activation_message())

    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "no-reply@bocage.example.org"
    assert envelope.rcpt_tos == [RECIPIENT]
    message = parse(envelope.content)
    assert message["To"] == RECIPIENT
    assert message["From"] == SENDER
    assert message["Subject"] == "Your Bocage invitation"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and ACTIVATION_URL in text.get_content()
    assert html is not None and 'src="cid:qr"' in html.get_content()
    image = inline_part(message, "qr")
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


def test_smtp_regular_attachment_and_no_html(smtp_server: tuple[Collector, int]) -> None:
    handler, port = smtp_server
    pdf = b"%PDF-1.4 fake invoice"
    message = activation_message(
        html=None,
        attachments=(
            Attachment("invoice.pdf", "application/pdf", pdf),
            Attachment("activation.png", "image/png", PNG, inline_id="qr"),
        ),
    )
    SmtpMailer("127.0.0.1", port, SENDER).send(message)

    received = parse(handler.envelopes[0].content)
    assert received.get_content_type() == "multipart/mixed"
    assert received.get_body(preferencelist=("html",)) is None
    files = {part.get_filename(): part for part in received.iter_attachments()}
    assert set(files) == {"invoice.pdf", "activation.png"}
    assert files["invoice.pdf"].get_content() == pdf
    # without HTML to point at it, the inline image travels as a plain attachment
    assert files["activation.png"].get_content() == PNG


def test_smtp_refuses_header_injection(smtp_server: tuple[Collector, int]) -> None:
    handler, port = smtp_server
    with pytest.raises(ValueError):
        SmtpMailer("127.0.0.1", port, SENDER).send(activation_message(subject="hi\r\nBcc: evil@example.com"))
    assert handler.envelopes == []


def accept_only(user: str, password: str) -> Any:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (user.encode(), password.encode())
        return AuthResult(success=ok, handled=False)  # handled=True would leave the reply to us

    return authenticator


@pytest.fixture
def auth_smtp_server() -> Iterator[tuple[Collector, int]]:
    handler = Collector()
    port = free_port()
    # Plaintext AUTH is fine on loopback in a test; production relays use starttls=True.
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=accept_only("bocage", "s3cret"),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_logs_in_when_user_is_set(auth_smtp_server: tuple[Collector, int]) -> None:
    handler, port = auth_smtp_server
    SmtpMailer("127.0.0.1", port, SENDER, user="bocage", password="s3cret").send(activation_message())
    assert [e.rcpt_tos for e in handler.envelopes] == [[RECIPIENT]]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_wrong_password_fails_and_is_not_in_repr(auth_smtp_server: tuple[Collector, int]) -> None:
    handler, port = auth_smtp_server
    mailer = SmtpMailer("127.0.0.1", port, SENDER, user="bocage", password="wrong-pass")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        mailer.send(activation_message())
    assert handler.envelopes == []
    assert "wrong-pass" not in repr(mailer)


# --- console -------------------------------------------------------------------------------------


def test_console_mailer_writes_a_readable_summary() -> None:
    stream = io.StringIO()
    ConsoleMailer(stream).send(activation_message())
    out = stream.getvalue()
    assert f"To: {RECIPIENT}" in out
    assert "Subject: Your Bocage invitation" in out
    assert f"Open {ACTIVATION_URL} on your phone." in out
    assert "activation.png" in out  # named, so the reader knows there was one
    assert "PNG" not in out and "<p>" not in out  # neither the image nor the HTML
    lines = out.splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"="}


def test_console_mailer_defaults_to_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleMailer().send(activation_message(attachments=()))
    err = capsys.readouterr().err
    assert "Subject: Your Bocage invitation" in err
    assert "Attachments" not in err

"""The mailers against real protocol peers: moto's SES, a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import io
import smtplib
import socket
import stat
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
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
from chalicelib.settings import Settings
from chalicelib.wiring import build_mailer

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


def test_console_mailer_saves_an_eml_and_logs_one_line_without_the_code(tmp_path: Path) -> None:
    outbox = tmp_path / "data" / "outbox"
    stream = io.StringIO()
    ConsoleMailer(outbox, stream).send(activation_message())

    (eml,) = outbox.iterdir()
    assert eml.suffix == ".eml"
    assert stat.S_IMODE(eml.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == RECIPIENT
    assert message["Subject"] == "Your Bocage invitation"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and ACTIVATION_URL in text.get_content()
    assert inline_part(message, "qr").get_content() == PNG

    assert stream.getvalue() == f"mail to {RECIPIENT} saved in {eml}\n"
    assert "abc123" not in stream.getvalue() and "invitation" not in stream.getvalue()


def test_console_mailer_keeps_every_mail_and_defaults_to_current_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mailer = ConsoleMailer(str(tmp_path / "outbox"))
    mailer.send(activation_message(attachments=()))
    mailer.send(activation_message(to="dominique@example.net"))
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" saved in ")[0] for line in lines] == [
        f"mail to {RECIPIENT}",
        "mail to dominique@example.net",
    ]
    assert not any(ACTIVATION_URL in line for line in lines)


def test_console_mailer_refuses_header_injection(tmp_path: Path) -> None:
    stream = io.StringIO()
    with pytest.raises(ValueError):
        ConsoleMailer(tmp_path, stream).send(activation_message(to="a@example.net\r\nBcc: evil@example.com"))
    assert stream.getvalue() == ""
    assert list(tmp_path.iterdir()) == []


def test_wiring_puts_the_console_outbox_in_the_data_directory(tmp_path: Path) -> None:
    mailer = build_mailer(Settings(data_dir=str(tmp_path), mailer="console"))
    assert isinstance(mailer, ConsoleMailer)
    mailer.send(activation_message())
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    assert parse(eml.read_bytes())["From"] == Settings().mail_from


# --- SMTP credentials need TLS -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["smtp.example.org", "192.0.2.10", "2001:db8::1", "localhost.example.org"])
def test_smtp_refuses_a_password_in_clear_to_a_remote_relay(host: str) -> None:
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpMailer(host, 587, SENDER, user="bocage", password="s3cret")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST."])
def test_smtp_allows_a_login_in_clear_on_loopback(host: str) -> None:
    SmtpMailer(host, 25, SENDER, user="bocage", password="s3cret")


def test_smtp_remote_relay_is_fine_with_starttls_or_without_login() -> None:
    SmtpMailer("smtp.example.org", 587, SENDER, user="bocage", password="s3cret", starttls=True)
    SmtpMailer("smtp.example.org", 25, SENDER)


def test_wiring_refuses_smtp_credentials_in_clear() -> None:
    settings = Settings(mailer="smtp", smtp_host="smtp.example.org", smtp_user="u", smtp_password="p")
    with pytest.raises(ValueError, match="STARTTLS"):
        build_mailer(settings)

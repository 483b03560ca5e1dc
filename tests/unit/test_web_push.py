"""Web Push's pure parts: the endpoint allow-list (SSRF), the keys' checks, the RFC 8291
encryption (opened by ``http_ece``, an independent implementation) and the VAPID signature."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature

from bocage.local.vapid import KEY_FILE, load_or_create, with_vapid_key
from chalicelib.adapters.web_push_crypto import PADDED, VapidKey, encrypt
from chalicelib.domain.push import DEFAULT_PUSH_SERVICES, allowed_host, check_endpoint, check_keys
from chalicelib.errors import BadRequest
from chalicelib.settings import Settings
from tests.push_service import PushDevice, b64url, verify_vapid

FCM = "https://fcm.googleapis.com/fcm/send/abc:APA91b"


@pytest.mark.parametrize(
    "endpoint",
    [
        FCM,
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAAB",
        "https://web.push.apple.com/QGuQyavXutnMH",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
        "https://FCM.googleapis.com:443/fcm/send/x",
    ],
)
def test_the_browsers_push_services_are_allowed(endpoint: str) -> None:
    assert check_endpoint(endpoint, DEFAULT_PUSH_SERVICES) == endpoint


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://fcm.googleapis.com/fcm/send/x", "https"),
        ("https://169.254.169.254/latest/meta-data/", "not a known push service"),
        ("https://127.0.0.1/push", "not a known push service"),
        ("https://localhost/push", "not a known push service"),
        ("https://fcm.googleapis.com.evil.example/x", "not a known push service"),
        ("https://evilfcm.googleapis.com/x", "not a known push service"),
        ("https://push.apple.com/x", "not a known push service"),  # '.push.apple.com': subdomains only
        ("https://fcm.googleapis.com:8443/x", "not a known push service"),
        ("https://user:pw@fcm.googleapis.com/x", "credentials"),
        ("https://fcm.googleapis.com:99999/x", "not a valid URL"),
        ("file:///etc/passwd", "https"),
        ("gopher://fcm.googleapis.com/x", "https"),
        ("https:///x", "host"),
        ("https://fcm.googleapis.com/" + "a" * 1100, "over 1024"),
    ],
)
def test_anything_else_is_refused_with_the_reason(endpoint: str, why: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_endpoint(endpoint, DEFAULT_PUSH_SERVICES)
    assert why in refused.value.message


def test_a_setting_extends_the_list_with_a_host_and_port() -> None:
    services = (*DEFAULT_PUSH_SERVICES, "localhost:8443", "push.example.org")
    assert check_endpoint("https://localhost:8443/p/1", services)
    assert check_endpoint("https://push.example.org/p/1", services)
    assert not allowed_host("localhost", 8444, services)
    assert not allowed_host("localhost", None, services)  # listed with a port: that port only
    assert not allowed_host("sub.push.example.org", None, services)  # no leading dot: exact host


def test_keys_must_be_a_p256_point_and_a_16_byte_secret() -> None:
    device = PushDevice()
    auth = b64url(device.auth)
    check_keys(device.p256dh, auth)
    for p256dh, secret, why in [
        (b64url(b"\x04" + b"\x01" * 63), auth, "65 bytes"),
        (b64url(b"\x02" + b"\x01" * 64), auth, "65 bytes"),
        (device.p256dh, b64url(b"x" * 15), "16-byte"),
        (device.p256dh, "not base64!", "base64url"),
        (device.p256dh + "A" * 60, auth, "too long"),
    ]:
        with pytest.raises(BadRequest) as refused:
            check_keys(p256dh, secret)
        assert why in refused.value.message


def test_the_payload_opens_only_with_the_devices_keys_and_its_size_says_nothing() -> None:
    device = PushDevice()
    short = encrypt(b'{"channel_id":"c_1"}', device.p256dh, b64url(device.auth))
    longer = encrypt(b'{"channel_id":"c_' + b"9" * 60 + b'"}', device.p256dh, b64url(device.auth))
    assert len(short) == len(longer)  # padded to PADDED bytes before sealing
    assert b"c_1" not in short
    opened = device.open(short)
    assert opened == b'{"channel_id":"c_1"}'
    stranger = PushDevice(auth=device.auth)
    with pytest.raises(http_ece.ECEException):
        stranger.open(short)
    with pytest.raises(ValueError):
        encrypt(b"x" * PADDED, device.p256dh, b64url(device.auth))


def test_the_vapid_header_is_an_es256_jwt_for_the_push_services_origin() -> None:
    key = VapidKey.generate()
    header = key.authorization(FCM, "mailto:maire@example.org", now=1_000)
    claims = verify_vapid(header, "https://fcm.googleapis.com", key.public_key)
    assert claims == {
        "aud": "https://fcm.googleapis.com",
        "exp": 1_000 + 12 * 3600,
        "sub": "mailto:maire@example.org",
    }
    again = VapidKey.from_text(key.private_text())
    assert again.public_key == key.public_key
    other = VapidKey.generate()
    with pytest.raises(InvalidSignature):
        verify_vapid(
            other.authorization(FCM, "mailto:x@y.z", 1).replace(other.public_key, key.public_key),
            "https://fcm.googleapis.com",
            key.public_key,
        )


@pytest.mark.parametrize("form", ["TraditionalOpenSSL", "PKCS8"])  # openssl ecparam writes the first
def test_a_pem_key_is_read_too(form: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, getattr(serialization.PrivateFormat, form), serialization.NoEncryption()
    ).decode()
    assert VapidKey.from_text(pem).private_text() == VapidKey(private).private_text()
    other_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="P-256"):
        VapidKey.from_text(other_curve.decode())


def test_bocage_serve_refuses_an_unreadable_key_and_keeps_a_good_one(tmp_path: Path) -> None:
    good = VapidKey.generate().private_text()
    kept = with_vapid_key(Settings(data_dir=str(tmp_path), vapid_private_key=good))
    assert kept.vapid_private_key == good and not (tmp_path / KEY_FILE).exists()
    for bad in ("not-a-key", "QUJD", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"):
        with pytest.raises(ValueError, match="BOCAGE_VAPID_PRIVATE_KEY"):
            with_vapid_key(Settings(data_dir=str(tmp_path), vapid_private_key=bad))


def test_bocage_serve_generates_its_key_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = load_or_create(str(tmp_path / "data"))
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    assert load_or_create(str(tmp_path / "data")) == first  # kept across restarts
    assert json.dumps(first) and VapidKey.from_text(first).public_key
    assert [p.name for p in (tmp_path / "data").iterdir()] == [KEY_FILE]  # no draft left behind

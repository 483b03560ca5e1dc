"""The CLI's error reporting and its retryable activation, through ``bocage.cli.main``."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bocage import cli
from bocage.client.api import ApiError, BocageClient
from bocage.client.profile import DeviceKeys, Profile

CODE = "ABCD-EFGH-JKLM"


def run(capsys: pytest.CaptureFixture[str], *argv: str, logs: bool = False) -> tuple[int, dict[str, Any]]:
    """Run with --json: exactly one JSON document on stdout, and no traceback on stderr.

    ``logs``: an in-process server also logs JSON lines to stdout; the CLI's document is the last.
    """
    status = cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    document: dict[str, Any] = json.loads(out.strip().splitlines()[-1] if logs else out)
    return status, document


def saved_profile(directory: Path, info: dict[str, Any] | None = None) -> DeviceKeys:
    keys = DeviceKeys.generate()
    profile = Profile(directory)
    profile.save_keys(keys)
    if info is not None:
        profile.save_info(info)
    return keys


# -- errors: one JSON document, exit 1 ------------------------------------------------------------


def test_a_server_without_scheme_is_a_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "p"
    argv = ("--profile", str(profile), "activate", CODE, "--name", "A", "--server", "example.org")
    status, error = run(capsys, *argv)
    assert status == 1
    assert error["error"] == "cli_error"
    assert "http://" in error["message"]
    assert not profile.exists()  # refused before any key was made


def test_an_org_create_server_without_scheme_is_a_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "operator.key"
    assert run(capsys, "operator", "keygen", str(key))[0] == 0
    status, error = run(capsys, "org", "create", "X", "--server", "example.org", "--operator-key", str(key))
    assert (status, error["error"]) == (1, "cli_error")


def test_a_corrupt_profile_is_a_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "p"
    saved_profile(profile)
    (profile / "profile.json").write_text('{"server": "http://127.0.0.1:1", ')
    status, error = run(capsys, "--profile", str(profile), "whoami")
    assert status == 1
    assert error["error"] == "cli_error"
    assert error["message"]


def test_a_corrupt_key_is_a_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "p"
    saved_profile(profile, {"server": "http://127.0.0.1:1"})
    (profile / "sign.key").write_bytes(b"short")  # nacl raises its own ValueError
    status, error = run(capsys, "--profile", str(profile), "members")
    assert (status, error["error"]) == (1, "cli_error")


def test_an_unknown_profile_is_a_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, error = run(capsys, "--profile", str(tmp_path / "nowhere"), "whoami")
    assert status == 1
    assert error["error"] == "cli_error"
    assert "bocage activate" in error["message"]


def test_a_human_error_is_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["activate", CODE, "--name", "A", "--server", "example.org"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("bocage: ") and err.count("\n") == 1


class HtmlHandler(BaseHTTPRequestHandler):
    """A proxy or a misconfigured URL: 200 with an HTML page, or a JSON list."""

    def do_GET(self) -> None:
        raw = b"[1, 2]" if self.path.startswith("/list") else b"<html><body>Welcome to nginx</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_non_json_success_reply_is_an_api_error(
    html_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ApiError) as caught:
        BocageClient(html_server).request("GET", "/me")
    assert (caught.value.status, caught.value.code) == (200, "bad_response")
    with pytest.raises(ApiError) as caught:
        BocageClient(html_server + "/list").request("GET", "/me")
    assert caught.value.code == "bad_response"

    profile = tmp_path / "p"
    saved_profile(profile, {"server": html_server})
    status, error = run(capsys, "--profile", str(profile), "whoami")
    assert status == 1
    assert (error["error"], error["status"]) == ("bad_response", 200)


# -- activation can be retried ---------------------------------------------------------------------


class FlakyActivate:
    """Stands in for the server: records the keys of each call; the first reply is lost."""

    def __init__(self, failures: int = 1) -> None:
        self.device_ids: list[str] = []
        self.identity_keys: list[str] = []
        self.failures = failures

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def activate(client: BocageClient, code: str, keys: DeviceKeys, **kwargs: Any) -> dict[str, Any]:
            self.device_ids.append(keys.device_id)
            self.identity_keys.append(kwargs["member_cert"]["identity_key"])
            if len(self.device_ids) <= self.failures:
                raise ConnectionResetError("the reply was lost")
            return {"org_id": "o_1", "member_id": "m_1", "device_id": keys.device_id, "role": "member"}

        monkeypatch.setattr(BocageClient, "activate", activate)


def activate(capsys: pytest.CaptureFixture[str], profile: Path) -> tuple[int, dict[str, Any]]:
    fragment = ("--org", "o_aaaaaaaaaaaaaaaa", "--member", "m_aaaaaaaaaaaaaaaa")  # a first owner's
    return run(
        capsys,
        "--profile",
        str(profile),
        "activate",
        CODE,
        "--server",
        "http://127.0.0.1:1",
        "--name",
        "A",
        *fragment,
    )


def test_activation_saves_keys_first_and_a_retry_reuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FlakyActivate()
    server.install(monkeypatch)
    profile = tmp_path / "p"

    status, error = activate(capsys, profile)
    assert (status, error["error"]) == (1, "cli_error")
    assert (profile / "sign.key").exists() and (profile / "box.key").exists()
    assert not (profile / "profile.json").exists()
    saved = Profile(profile).keys().device_id
    assert server.device_ids == [saved]

    status, result = activate(capsys, profile)
    assert status == 0
    assert server.device_ids == [saved, saved]  # the same device key: the server sees a retry
    assert server.identity_keys[0] == server.identity_keys[1]  # and the same identity key
    assert (profile / "identity.key").stat().st_mode & 0o777 == 0o600
    assert result["device_id"] == saved
    assert Profile(profile).info()["device_id"] == saved
    assert Profile(profile).keys().device_id == saved


def test_activation_reuses_keys_left_in_a_profile_without_profile_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FlakyActivate(failures=0)
    server.install(monkeypatch)
    profile = tmp_path / "p"
    keys = saved_profile(profile)
    status, result = activate(capsys, profile)
    assert status == 0
    assert server.device_ids == [keys.device_id]
    assert result["device_id"] == keys.device_id


def test_activation_refuses_an_activated_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FlakyActivate(failures=0)
    server.install(monkeypatch)
    profile = tmp_path / "p"
    keys = saved_profile(profile, {"server": "http://127.0.0.1:1", "device_id": "d_x"})
    status, error = activate(capsys, profile)
    assert (status, error["error"]) == (1, "cli_error")
    assert "already" in error["message"]
    assert server.device_ids == []
    assert Profile(profile).keys().device_id == keys.device_id  # untouched


def test_activation_against_the_real_app_survives_a_lost_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server consumes the code, the reply is lost; the retry gets 201 again, not 409."""
    from app import app
    from chalicelib import wiring
    from chalicelib.domain.organisation import Plan
    from chalicelib.services.invitations import Links
    from chalicelib.settings import Settings
    from tests.e2e.conftest import rest_server

    container = wiring.build(Settings(data_dir=str(tmp_path / "data")))
    wiring.use(container)
    serving = contextlib.ExitStack()
    host, port = serving.enter_context(rest_server(app))
    url = f"http://{host}:{port}"
    real = BocageClient.activate
    calls: list[str] = []

    def lose_first_reply(client: BocageClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = real(client, *args, **kwargs)
        calls.append(result["device_id"])
        if len(calls) == 1:
            raise ConnectionResetError("the reply was lost")
        return result

    monkeypatch.setattr(BocageClient, "activate", lose_first_reply)
    try:
        _, invitation = container.invitations.create_organisation(
            "Mairie", Plan.FREE, "Maire", Links(api_url=url, app_url=f"{url}/app")
        )
        profile = str(tmp_path / "owner")
        argv = ("--profile", profile, "activate", invitation.public()["activation_url"], "--name", "Maire")
        assert run(capsys, *argv, logs=True)[0] == 1
        status, result = run(capsys, *argv, logs=True)
        assert status == 0, result
        assert calls == [result["device_id"], result["device_id"]]
        assert result["role"] == "owner"
        monkeypatch.setattr(BocageClient, "activate", real)
        assert run(capsys, "--profile", profile, "whoami", logs=True)[1]["device_id"] == result["device_id"]
    finally:
        serving.close()
        wiring.use(None)


def test_the_cli_loads_no_server_code() -> None:
    """Everyday commands start without the server's services; only --data commands load them."""
    import subprocess
    import sys

    probe = (
        "import sys, bocage.cli; "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('chalicelib.services', 'chalicelib.wiring', 'chalicelib.jobs', 'bocage.local'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_listen_reports_trust_warnings_as_they_arise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener runs for days: a warning raised while opening a message reaches stderr right
    after it, not only in the summary; stdout keeps one message a line."""
    from bocage.client.certs import TrustWarning
    from bocage.client.messenger import Messenger

    profile = tmp_path / "p"
    info = {"server": "http://127.0.0.1:1", "org_id": "o_x", "device_id": "d_x", "member_id": "m_x"}
    saved_profile(profile, info)

    def listen(self: Messenger, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs["on_ready"]()
        self.trust.warn(TrustWarning("uncertified_device", "d_ghost is not certified", "m_bob", "d_ghost"))
        yield {"channel_id": "c_1", "kind": "message", "verified": False, "error": "uncertified sender"}
        yield {"channel_id": "c_1", "kind": "message", "verified": True, "text": "bonjour"}

    monkeypatch.setattr(Messenger, "listen", listen)
    assert cli.main(["--profile", str(profile), "listen", "--count", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [m.get("text") for m in lines[:2]] == [None, "bonjour"]
    streamed = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert streamed == [
        {
            "warning": {
                "code": "uncertified_device",
                "member_id": "m_bob",
                "device_id": "d_ghost",
                "message": "d_ghost is not certified",
            }
        }
    ]
    assert err.index("listening") < err.index("d_ghost")


def test_the_audit_log_prints_one_line_an_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = {
        "entry_id": "a_1",
        "at": 1767225600,  # 2026-01-01 00:00 UTC
        "actor": {"member_id": "m_1", "display_name": "Maire"},
        "action": "member.role_changed",
        "targets": {"member_id": "m_2"},
        "details": {"old_role": "member", "new_role": "admin"},
    }
    cli._print_human("audit", {"entries": [entry]})
    out = capsys.readouterr().out
    assert (
        out == "2026-01-01 00:00  Maire  member.role_changed  member_id=m_2 old_role=member new_role=admin\n"
    )
    status, error = run(capsys, "--profile", str(tmp_path / "nowhere"), "audit", "--limit", "0")
    assert status == 1 and error["message"] == "--limit must be at least 1"

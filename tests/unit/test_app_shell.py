"""The service worker's stamp (the shell's files and version) and the headers of the app's files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bocage.local.app_shell import NOT_PRECACHED, stamp_worker
from bocage.local.static_files import StaticFiles, app_security_headers

WORKER = b"// the worker\nconst BUILD = { version: 'dev', files: [] };\nconst CACHE = BUILD.version;\n"


@pytest.fixture
def site(tmp_path: Path) -> StaticFiles:
    web = tmp_path / "web"
    (web / "js").mkdir(parents=True)
    (web / "icons").mkdir()
    (web / "index.html").write_text("<!doctype html>")
    (web / "js" / "app.js").write_text("export const a = 1;\n")
    (web / "icons" / "icon-512.png").write_bytes(b"\x89PNG")
    (web / ".hidden.js").write_text("never served")
    (web / "sw.js").write_bytes(WORKER)
    for target in ("tweetnacl/nacl-fast.min.js", "qrcode-generator/dist/qrcode.mjs"):
        (tmp_path / "node_modules" / target).parent.mkdir(parents=True)
        (tmp_path / "node_modules" / target).write_text(f"/* {target} */")
    return StaticFiles(web, tmp_path / "node_modules")


def build_of(worker: bytes) -> dict[str, object]:
    match = re.search(rb"^const BUILD = (\{.*\});$", worker, re.MULTILINE)
    assert match, worker
    return dict(json.loads(match.group(1)))


def test_the_worker_precaches_every_served_file_but_itself_and_the_install_icon(site: StaticFiles) -> None:
    build = build_of(site.answer("GET", "/app/sw.js", None).body)
    assert build["files"] == ["index.html", "js/app.js", "vendor/nacl-fast.min.js", "vendor/qrcode.mjs"]
    assert "icons/icon-512.png" in NOT_PRECACHED and site.file("/app/icons/icon-512.png") is not None


def test_any_changed_file_is_a_new_version_and_a_new_worker(site: StaticFiles) -> None:
    before = site.answer("GET", "/app/sw.js", None)
    (site.web_dir / "js" / "app.js").write_text("export const a = 2;\n")
    after = site.answer("GET", "/app/sw.js", None)
    assert build_of(before.body)["version"] != build_of(after.body)["version"]
    etags = [dict(answer.headers)["ETag"] for answer in (before, after)]
    assert etags[0] != etags[1]  # the browser sees new bytes: it installs the new worker
    assert after.body.endswith(b"const CACHE = BUILD.version;\n")  # only the stamp line changed


def test_a_worker_without_its_stamp_line_is_refused() -> None:
    with pytest.raises(ValueError, match="BUILD"):
        stamp_worker(StaticFiles(Path("/nonexistent"), Path("/nonexistent")), b"const X = 1;\n")


def test_documents_and_the_worker_get_the_whole_policy_other_files_the_headers_that_act_on_them(
    site: StaticFiles,
) -> None:
    full = app_security_headers()
    for path in ("/app/", "/app/index.html", "/app/sw.js"):
        headers = dict(site.answer("GET", path, None).headers)
        assert {name: headers.get(name) for name in full} == full, path
    headers = dict(site.answer("GET", "/app/js/app.js", None).headers)
    assert "Content-Security-Policy" not in headers and "X-Frame-Options" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin" and headers["Cache-Control"] == "no-cache"

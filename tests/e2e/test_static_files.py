"""The web app under /app/ comes from BOCAGE_WEB_DIR and the node_modules beside it, over loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.app import Chalice

from bocage.local.static_files import StaticFiles
from chalicelib.settings import Settings
from tests.e2e.conftest import rest_server

pytestmark = pytest.mark.e2e

REPO_WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.fixture
def web_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    web = tmp_path / "site" / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>elsewhere</title>")
    (web / "js" / "app.js").write_text("export const here = 1;\n")
    (web / "js" / "big.js").write_text("export const words = 'bocage';\n" * 200)
    nacl = tmp_path / "site" / "node_modules" / "tweetnacl"
    nacl.mkdir(parents=True)
    (nacl / "nacl-fast.min.js").write_text("/* the pinned nacl */")
    monkeypatch.setenv("BOCAGE_WEB_DIR", str(web))
    return web


@pytest.fixture
def url(web_dir: Path) -> Iterator[str]:
    with rest_server(Chalice(app_name="static-only")) as (host, port):  # reads the environment
        yield f"http://{host}:{port}"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_configured_web_dir_and_its_node_modules_are_served(url: str) -> None:
    assert get(f"{url}/app/") == (200, "<!doctype html><title>elsewhere</title>")
    assert get(f"{url}/app/js/app.js") == (200, "export const here = 1;\n")
    assert get(f"{url}/app/vendor/nacl-fast.min.js") == (200, "/* the pinned nacl */")


def test_nothing_comes_from_the_repositorys_web_dir_once_another_is_configured(url: str) -> None:
    assert (REPO_WEB / "style.css").is_file()
    status, _ = get(f"{url}/app/style.css")
    assert status == 404
    status, _ = get(f"{url}/app/vendor/qrcode.mjs")  # allow-listed, but not installed beside it
    assert status == 404


def test_the_default_is_the_repositorys_web_dir() -> None:
    assert Path(Settings.from_env({}).web_dir) == REPO_WEB
    site = StaticFiles.from_settings(Settings.from_env({"BOCAGE_WEB_DIR": "/srv/bocage/web"}))
    assert site.file("/app/") == Path("/srv/bocage/web/index.html")
    assert site.file("/app/vendor/qrcode.mjs") == Path(
        "/srv/bocage/node_modules/qrcode-generator/dist/qrcode.mjs"
    )


def test_text_over_1_kib_is_gzipped_for_clients_that_take_it(url: str) -> None:
    import gzip

    big = "export const words = 'bocage';\n" * 200
    asked = urllib.request.Request(f"{url}/app/js/big.js", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(asked, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["ETag"].startswith('W/"')  # not the file's bytes: a weak validator
        body = response.read()
        assert len(body) < len(big) / 10 and gzip.decompress(body).decode() == big
        etag = response.headers["ETag"]
    again = urllib.request.Request(
        f"{url}/app/js/big.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(again, timeout=5)
    assert not_modified.value.code == 304
    with urllib.request.urlopen(f"{url}/app/js/big.js", timeout=5) as plain:  # no Accept-Encoding
        assert plain.headers["Content-Encoding"] is None and plain.read().decode() == big
    small = urllib.request.Request(f"{url}/app/js/app.js", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(small, timeout=5) as response:  # too small to pay
        assert response.headers["Content-Encoding"] is None

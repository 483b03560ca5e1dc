"""File blobs through the ObjectStore port, over real HTTP: S3 on moto's server (presigned URLs,
as on AWS or an S3-compatible service), and the data directory served by a real `bocage serve`
under /blobs/ with URLs signed by the data directory's secret. Both adapters keep one contract."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.local_objects import LocalObjectStore
from chalicelib.adapters.s3_objects import S3ObjectStore
from chalicelib.ports import ObjectStore, SignedUrl
from tests.e2e.conftest import Server, start_server

BUCKET = "bocage-files-test"


def call(signed: SignedUrl, body: bytes | None = None, *, method: str | None = None) -> tuple[int, bytes]:
    headers = {}
    if body is not None:  # the length actually sent, whatever the URL was signed for
        headers = {
            **signed.headers,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body)),
        }
    request = urllib.request.Request(signed.url, data=body, method=method or signed.method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


class ShiftedClock:
    """The wall clock moved by ``offset`` seconds: URLs signed in the past."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def now(self) -> int:
        return SystemClock().now() + self.offset


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("blobs")
    srv = start_server(tmp / "data", tmp / "serve.log", BOCAGE_STORE="sqlite")
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def local_store(server: Server, clock: object | None = None) -> LocalObjectStore:
    assert server.data is not None
    return LocalObjectStore(str(server.data), server.url, clock or SystemClock())  # type: ignore[arg-type]


@pytest.fixture(params=["s3", "local"])
def objects(request: pytest.FixtureRequest) -> ObjectStore:
    if request.param == "local":
        return local_store(request.getfixturevalue("local_server"))
    endpoint = request.getfixturevalue("moto_endpoint")
    boto3.client("s3", region_name="eu-west-3", endpoint_url=endpoint).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
    )
    return S3ObjectStore(BUCKET, SystemClock(), region="eu-west-3", endpoint_url=endpoint)


def test_a_blob_goes_up_and_down_by_signed_urls_then_is_gone(objects: ObjectStore) -> None:
    key = f"o_test/c_test/{secrets.token_hex(8)}"
    blob = secrets.token_bytes(200_000)
    assert objects.size_of(key) is None
    slot = objects.upload_url(key, len(blob), 900)
    assert slot.method == "PUT" and slot.headers["Content-Length"] == str(len(blob))
    status, _ = call(slot, blob)
    assert status == 200
    assert objects.size_of(key) == len(blob)
    status, fetched = call(objects.download_url(key, 300))
    assert (status, fetched) == (200, blob)
    with urllib.request.urlopen(objects.download_url(key, 300).url, timeout=30) as answer:
        # Any bytes a member uploaded come back as a download, never a page a browser renders.
        assert answer.headers["Content-Type"] == "application/octet-stream"
        assert answer.headers["Content-Disposition"] == "attachment"
    objects.delete(key)
    objects.delete(key)  # already gone: not an error
    assert objects.size_of(key) is None
    status, _ = call(objects.download_url(key, 300))
    assert status in {403, 404}  # S3 answers 404 NoSuchKey; the local gateway 404


def test_local_urls_do_only_what_they_were_signed_for(local_server: Server) -> None:
    objects = local_store(local_server)
    key = f"o_test/c_test/{secrets.token_hex(8)}"
    blob = secrets.token_bytes(5000)
    slot = objects.upload_url(key, len(blob), 900)
    forged = SignedUrl(
        slot.url.replace("size=5000", "size=9000"), "PUT", slot.expires_at, {"Content-Length": "9000"}
    )
    assert call(forged, bytes(9000))[0] == 403
    assert call(slot, blob + b"x", method="PUT")[0] == 400  # not the signed size
    assert objects.size_of(key) is None  # nothing half-stored
    assert call(objects.download_url(key, 300), blob, method="PUT")[0] == 403  # a GET URL cannot write
    assert call(slot, blob[:100], method="PUT")[0] == 400  # short of the signed size
    assert objects.size_of(key) is None
    assert not list(objects.path_of(key).parent.glob("*.part"))  # no partial left behind
    assert call(slot, blob)[0] == 200
    assert call(slot, blob)[0] == 409  # an upload slot is used once
    with urllib.request.urlopen(objects.download_url(key, 60).url, timeout=30) as answer:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in answer.headers["Content-Security-Policy"]
    expired = local_store(local_server, ShiftedClock(-3600))
    status, body = call(expired.download_url(key, 60))
    assert status == 403 and b"expired" in body
    assert call(objects.download_url(key, 60))[0] == 200
    other = LocalObjectStore(
        str(Path(local_server.data or "") / "elsewhere"), local_server.url, SystemClock()
    )
    assert call(other.download_url(key, 60))[0] == 403  # signed with another data directory's secret
    bad_key = SignedUrl(f"{local_server.url}/blobs/../bocage.sqlite3?expires=1&size=0&sig=x", "GET", 0)
    assert call(bad_key)[0] in {403, 404}


def test_no_blob_is_served_from_the_data_directory_when_files_live_on_s3(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "serve.log", BOCAGE_BUCKET="some-bucket")
    try:
        objects = local_store(srv)
        objects.write("o_x/c_x/b_x", b"left over")
        assert call(objects.download_url("o_x/c_x/b_x", 60))[0] == 404
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)

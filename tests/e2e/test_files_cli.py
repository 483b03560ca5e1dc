"""Photos and documents over real sockets: `bocage serve` keeping blobs in its data directory or
in S3 (moto's server over HTTP, as an S3-compatible service through BOCAGE_S3_ENDPOINT), the CLI
sending a file and another member downloading it decrypted; what the server holds of it is an
opaque blob, gone with its message."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from pathlib import Path

import boto3
from PIL import Image

from chalicelib.adapters.s3_objects import LIFETIME_TAG
from chalicelib.domain.encoding import b64d
from tests.e2e.conftest import Server, base_env, bocage, bocage_fails, bocage_with_stderr, start_server

BUCKET = "bocage-files-e2e"
Blobs = Callable[[], dict[str, bytes]]


def _walkthrough(server: Server, tmp_path: Path, blobs: Blobs) -> tuple[Path, Path, str]:
    owner, alice = tmp_path / "owner", tmp_path / "alice"
    owner_id = bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")["member_id"]
    invitation = bocage("--profile", str(owner), "invite", "--name", "Alice")
    bocage("--profile", str(alice), "activate", invitation["activation_url"], "--name", "Alice")
    group = bocage("--profile", str(alice), "group", "create", "Chantier")["channel_id"]
    bocage("--profile", str(alice), "channel", "add", group, owner_id)

    document = tmp_path / "compte rendu.pdf"
    content = b"%PDF-1.7 " + secrets.token_bytes(300_000)
    document.write_bytes(content)
    sent = bocage("--profile", str(alice), "send", group, "--file", str(document), "Le compte rendu")
    attachment = sent["attachment"]
    assert (attachment["name"], attachment["mime"], attachment["size"]) == (
        "compte rendu.pdf",
        "application/pdf",
        len(content),
    )
    ((name, stored),) = blobs().items()
    assert name.endswith(attachment["blob_id"])
    assert len(stored) == attachment["stored_bytes"] and content[:1000] not in stored

    out = tmp_path / "downloads"
    got = bocage("--profile", str(owner), "download", group, sent["message_id"], "--out", str(out))
    assert Path(got["path"]).read_bytes() == content and Path(got["path"]).name == "compte rendu.pdf"
    again, drawn = bocage_with_stderr(
        "--profile", str(owner), "download", group, sent["message_id"], "--out", str(out), "--progress", "on"
    )
    assert Path(again["path"]).name == "compte rendu (1).pdf"  # never overwrites
    stored_kb = f"{attachment['stored_bytes'] / 1000:.0f} kB"
    assert drawn.endswith(f"] 100 %  {stored_kb} of {stored_kb}\n") and drawn.count("downloading ") > 2

    text_only = bocage("--profile", str(alice), "send", group, "sans pièce jointe")["message_id"]
    refused = bocage_fails("--profile", str(owner), "download", group, text_only)
    assert "carries no file" in refused["message"]
    assert "nothing to send" in bocage_fails("--profile", str(alice), "send", group)["message"]

    bocage("--profile", str(alice), "delete", group, sent["message_id"])
    assert blobs() == {}  # gone with its message, at once
    gone = bocage_fails("--profile", str(owner), "download", group, sent["message_id"])
    assert gone["error"] in {"not_found", "cli_error"}
    return owner, alice, group


def test_a_document_on_the_data_directory_then_a_phone_photo(server: Server, tmp_path: Path) -> None:
    assert server.data is not None
    root = server.data / "blobs"
    owner, alice, group = _walkthrough(
        server, tmp_path, lambda: {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    )
    # A phone photo leaves sober: at the size the organisation's admins chose (1,280 px here),
    # re-encoded without its EXIF (camera, place), with a thumbnail of at most 8 KB inside the
    # sealed message.
    assert bocage("--profile", str(owner), "org", "photos", "1280")["photo_max_side"] == 1280
    photo = tmp_path / "IMG_0042.jpeg"
    exif = Image.Exif()
    exif[0x0110] = "Phone 12"  # Model
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS
    Image.new("RGB", (3000, 2000), (200, 180, 40)).save(photo, "JPEG", quality=95, exif=exif)
    sent = bocage("--profile", str(alice), "send", group, "--file", str(photo))
    assert sent["attachment"]["name"] == "IMG_0042.jpg"
    assert sent["attachment"]["original_bytes"] == photo.stat().st_size
    got = Path(
        bocage("--profile", str(owner), "download", group, sent["message_id"], "--out", str(tmp_path))["path"]
    )
    with Image.open(got) as arrived:
        assert arrived.size == (1280, 853) and not arrived.getexif()
    (shown,) = [
        m
        for m in bocage("--profile", str(owner), "read", group)["messages"]
        if m["message_id"] == sent["message_id"]
    ]
    thumb = b64d(shown["content"]["thumb"])
    assert len(thumb) <= 8 * 1024
    with Image.open(io.BytesIO(thumb)) as small:
        assert small.size == (160, 107) and not small.getexif()


def test_a_document_on_an_s3_compatible_service(moto_endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="eu-west-3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})

    def blobs() -> dict[str, bytes]:
        listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}

    srv = start_server(
        tmp_path / "data",
        tmp_path / "serve.log",
        BOCAGE_STORE="sqlite",
        BOCAGE_BUCKET=BUCKET,
        BOCAGE_S3_ENDPOINT=moto_endpoint,
    )
    try:
        _owner, alice, group = _walkthrough(srv, tmp_path, blobs)
        assert not (tmp_path / "data" / "blobs").exists()  # nothing kept beside the bucket
        # A referenced blob carries its lifecycle class: the bucket itself would delete it a
        # class step after its message (90 days by default) if the purge job never ran.
        note = tmp_path / "note.txt"
        note.write_bytes(b"ordre du jour")
        sent = bocage("--profile", str(alice), "send", group, "--file", str(note))
        (key,) = blobs()
        assert key.endswith(sent["attachment"]["blob_id"])
        tags = s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
        assert tags == [{"Key": LIFETIME_TAG, "Value": "92"}]
        # A year's retention: the retention job moves the blob's class with its message.
        owner = tmp_path / "owner"
        assert bocage("--profile", str(owner), "retention", "set", "1y")["retention_days"] == 365
        job_env = {"BOCAGE_STORE": "sqlite", "BOCAGE_DATA_DIR": str(tmp_path / "data")}
        job_env |= {"BOCAGE_BUCKET": BUCKET, "BOCAGE_S3_ENDPOINT": moto_endpoint}
        bocage("jobs", "run", "retention", env=base_env(**job_env))
        tags = s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
        assert tags == [{"Key": LIFETIME_TAG, "Value": "366"}]
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)

"""Photos and documents (docs/protocol.md, section 18): what a file costs in bytes, CPU and requests.

Prints, for a ``--mb`` MB file (a phone photo: random bytes, which do not compress):

1. **Bytes**: the file, the encrypted blob the server stores (padding to a size bucket, a
   16-byte MAC per 64 KiB chunk, a 17-byte header), and what is transferred (the blob once up,
   once down per reader); and for a 12-megapixel phone photo of about ``--mb`` MB (a synthetic
   scene: gradients, shapes and sensor-like noise, JPEG quality 95 with EXIF), the same once the
   device has resized and re-encoded it (``bocage/client/images.py``).
2. **Throughput** of encryption and decryption, MB/s, in Python (``bocage/client/filecrypt.py``,
   PyNaCl) and in the web app's JS under node (``web/js/filecrypt.js``, tweetnacl): median of
   ``--runs`` runs, with the per-run values.
3. **Requests per attachment** on the real app in process (SQLite store wrapped in a
   ``CountingStore``; the object store wrapped to count the calls that are S3 requests): store
   reads and writes for the upload slot, the reference, one download URL and the purge when the
   message expires; and S3 requests (the client's PUT and GET on presigned URLs, the HEAD that
   checks the upload, the DELETE). Signing a presigned URL makes no request.

    python bench/attachments.py [--mb 4] [--runs 5]

No figure here is asserted: timings are noisy on a small machine, so quote medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bocage.client.filecrypt import blob_size, decrypt_file, seal_file
from bocage.client.files import fetch_file, send_file
from bocage.client.profile import OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.local_objects import LocalObjectStore
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.ports import SignedUrl
from chalicelib.settings import Settings
from tests.integration.test_files_api import StoreTransfer
from tests.support import RecordingMailer, RecordingPush, SignedApi, messenger_for

ROOT = Path(__file__).resolve().parents[1]


class CountingObjects:
    """An ObjectStore that counts the calls that are S3 requests (HEAD, DELETE)."""

    def __init__(self, inner: LocalObjectStore) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()

    def upload_url(self, key: str, size: int, expires_in: int) -> SignedUrl:
        return self.inner.upload_url(key, size, expires_in)

    def download_url(self, key: str, expires_in: int) -> SignedUrl:
        return self.inner.download_url(key, expires_in)

    def size_of(self, key: str) -> int | None:
        self.requests["HEAD"] += 1
        return self.inner.size_of(key)

    def delete(self, key: str) -> None:
        self.requests["DELETE"] += 1
        self.inner.delete(key)

    def set_lifetime(self, key: str, days: int) -> None:
        self.requests["TAG"] += 1  # on S3, a PutObjectTagging
        self.inner.set_lifetime(key, days)


class CountingTransfer(StoreTransfer):
    def __init__(self, objects: LocalObjectStore, requests: Counter[str]) -> None:
        super().__init__(objects)
        self.requests = requests

    def put(self, url: str, headers: Any, body: bytes) -> None:
        self.requests["PUT"] += 1
        super().put(url, headers, body)

    def get(self, url: str, limit: int) -> bytes:
        self.requests["GET"] += 1
        return super().get(url, limit)


def phone_photo(target_mb: int) -> bytes:
    """A 4000 x 3000 JPEG of about ``target_mb`` MB: smooth scene plus noise, with EXIF."""
    import io
    import random

    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(42)
    scene = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    draw = ImageDraw.Draw(scene)
    for _ in range(300):
        x, y = rng.randrange(4000), rng.randrange(3000)
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + rng.randrange(50, 600), y + rng.randrange(50, 600)), fill=fill)
    scene = scene.filter(ImageFilter.GaussianBlur(3))
    best = b""
    for amount in (4, 8, 12, 16, 24, 32):
        noise = Image.effect_noise((4000, 3000), amount).convert("RGB")
        photo = Image.blend(scene, noise, 0.15)
        exif = Image.Exif()
        exif[0x0110] = "Phone 12"
        out = io.BytesIO()
        photo.save(out, "JPEG", quality=95, exif=exif.tobytes())
        best = out.getvalue()
        if len(best) >= target_mb * 1_000_000:
            break
    return best


def python_throughput(data: bytes, runs: int) -> dict[str, Any]:
    mb = len(data) / 1e6
    enc, dec = [], []
    for _ in range(runs):
        t = time.perf_counter()
        ref, blob = seal_file(data, "b_bench", "photo.jpg", "image/jpeg")
        enc.append(mb / (time.perf_counter() - t))
        t = time.perf_counter()
        decrypt_file(blob, ref)
        dec.append(mb / (time.perf_counter() - t))
    return {
        "encrypt_mb_s": statistics.median(enc),
        "decrypt_mb_s": statistics.median(dec),
        "runs": (enc, dec),
    }


def js_throughput(mb: int, runs: int) -> dict[str, Any] | None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "tweetnacl").is_dir():
        return None
    done = subprocess.run(
        [node, str(ROOT / "bench" / "attachments.mjs"), str(mb), str(runs)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def requests_per_attachment(data: bytes) -> dict[str, Any]:
    """Store operations and S3 requests of one attachment's life, on the real app in process."""
    from chalice.test import Client

    from app import app

    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        store = CountingStore(SqliteStore(str(Path(tmp) / "bocage.sqlite3"), clock))
        local = LocalObjectStore(str(Path(tmp) / "data"), "https://api.bocage.test", clock)
        objects = CountingObjects(local)
        operator = OperatorKey.generate()
        settings = dataclasses.replace(
            Settings(), public_url="https://api.bocage.test", operator_keys=(operator.public_key,)
        )
        container = wiring.build(
            settings,
            store=store,
            clock=clock,
            mailer=RecordingMailer(),
            push=RecordingPush(),
            objects=objects,
        )
        wiring.use(container)
        try:
            with Client(app) as client:
                api = SignedApi(client.http, clock, client.lambda_)
                created = api.create_org(operator)
                keys, reply = api.activate(created["activation_code"], "Maire")
                owner = messenger_for(api, keys, Path(tmp) / "owner", dict(reply.body))
                cid = owner.create_channel("group", "Chantier")["channel_id"]
                owner.send_text(cid, "avant")  # keys distributed: the attachment's send is a plain one
                transfer = CountingTransfer(local, objects.requests)
                phases: dict[str, Any] = {}
                store.reset()
                sent = send_file(owner, cid, data, "photo.jpg", "image/jpeg", transfer=transfer)
                phases["send (slot, message, reference)"] = dict(store.reset())
                fetch_file(owner, cid, sent["message_id"], transfer=transfer)
                phases["download (history read + URL)"] = dict(store.reset())
                clock.advance(sent["expires_at"] - clock.now())
                container.files.purge(deadline=time.monotonic() + 60)
                phases["purge at expiry"] = dict(store.reset())
                return {"store": phases, "s3_requests": dict(objects.requests)}
        finally:
            wiring.use(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = secrets.token_bytes(args.mb * 1_000_000)
    stored = blob_size(len(data))
    print(f"File: {len(data):,} bytes ({args.mb} MB)")
    print(f"  blob stored: {stored:,} bytes (+{100 * (stored - len(data)) / len(data):.2f} %)")
    print(
        f"  transferred: {stored:,} up once, {stored:,} down per reader; compression on the device: not built"
    )
    try:
        from bocage.client.images import compress_image

        photo = phone_photo(args.mb)
        sent, _, _ = compress_image(photo, "IMG.jpg", "image/jpeg")
        print(f"Phone photo 4000 x 3000: {len(photo):,} bytes; blob as it is {blob_size(len(photo)):,}")
        after, before = blob_size(len(sent)), blob_size(len(photo))
        print(f"  resized to 1600 px, re-encoded on the device: {len(sent):,} bytes, blob {after:,}")
        print(f"  stored and transferred: {100 * after / before:.1f} % of the photo sent as it is")
    except ImportError:
        print("Phone photo: Pillow missing (pip install 'bocage[images]')")
    py = python_throughput(data, args.runs)
    enc, dec = py["encrypt_mb_s"], py["decrypt_mb_s"]
    print(f"Python (PyNaCl): encrypt {enc:.0f} MB/s, decrypt {dec:.0f} MB/s (median of {args.runs})")
    print("  runs:", [f"{x:.0f}" for x in py["runs"][0]], [f"{x:.0f}" for x in py["runs"][1]])
    js = js_throughput(args.mb, args.runs)
    if js is None:
        print("JS under node: node or node_modules/tweetnacl missing")
    else:
        enc, dec = js["encrypt_mb_s"], js["decrypt_mb_s"]
        print(
            f"JS under node (tweetnacl): encrypt {enc:.1f} MB/s, decrypt {dec:.1f} MB/s",
            f"(median of {args.runs})",
        )
        print("  runs:", [f"{x:.1f}" for x in js["encrypt_runs"]], [f"{x:.1f}" for x in js["decrypt_runs"]])
    costs = requests_per_attachment(data)
    print("Store operations per attachment:")
    for phase, counts in costs["store"].items():
        print(f"  {phase}: {counts}")
    print(f"S3 requests per attachment (one reader): {costs['s3_requests']}")


if __name__ == "__main__":
    main()

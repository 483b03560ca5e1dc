"""Retention costs: bytes stored per message, and what a retention change costs its job.

What it prints:

1. **Bytes stored per message, on each adapter**, for a 100-character and a 1,000-character French
   text (one channel, a fresh store per size):

   - SQLite: the file's growth per message (main file plus WAL, each measured right after
     ``PRAGMA wal_checkpoint(TRUNCATE)``, so the WAL is empty), and the row bytes per message: the
     UTF-8 length of the stored JSON plus ``pk`` and ``sk``, for the message row (``MSG#``) and
     its id-marker row (``MID#``). The growth over the row bytes is SQLite's overhead (B-tree
     pages, the ``expires_at`` index, free space in pages).
   - DynamoDB (in-process moto): the item size as DynamoDB bills it, from
     ``store_items.item_size`` on the items read back by a Scan, per message item and per message
     including its ``MID#`` item; moto's own ``Item.size()`` for comparison; the write units one
     put of the message item costs (1 WCU per KB, rounded up); and the bytes billed as storage,
     which add 100 bytes of indexing overhead per item.

2. **The retention-change job per 10,000 messages**: ``--messages`` messages (100-character
   texts) over 10 channels under a 1-year retention, half of them sent 200 days before the other
   half; the organisation then shortens its retention to 3 months, so the older half must be
   deleted and the younger half re-stamped (``expires_at``). ``container.retention.run()`` is
   timed (median of ``--runs`` fresh runs, each seeded anew) over a ``CountingStore``, and the
   figures are scaled to 10,000 messages: wall time, Store operations by kind, BatchWriteItem
   requests (25 items at most each), on moto the DynamoDB API requests actually made, and the
   items scanned, re-stamped and deleted. Stored items by kind before and after the job are
   printed too, and whether the reader can still open a message of the younger half afterwards.
   In-process moto is much slower than DynamoDB: it runs ``--moto-messages`` messages, and its
   per-10,000 figures are scaled linearly from that count (the output says so). Its wall time
   measures moto, not DynamoDB.

How: the real Chalice app in process (``chalice.test.Client``), assembled as the tests assemble it
(``wiring.build`` with a ``ManualClock``, a recording mailer and push), over a ``CountingStore``
around a SQLite file in a temporary directory, or a ``DynamoDbStore`` on in-process moto
(``mock_aws``, placeholder credentials). An owner and a reader activate; the owner creates each
channel, adds the reader and hands out its sender key over the signed API. The first message of
section 1 goes through the whole client path (``Messenger.send_text``: POST
/channels/{id}/messages); the others are sealed and signed by the client library
(``seal_message``) and handed to ``container.messaging.send`` directly, which stores exactly the
same items, faster. The script checks that both paths store items of the same shape, and that the
reader opens a seeded message.

    python bench/retention.py [--messages 10000] [--runs 3] [--moto-messages 1000] [--skip-moto]

No figure here is asserted: timings are noisy on a small machine, so quote medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one log line per request would drown the figures

from bocage.client.crypto import new_message_id, pad, seal_message
from bocage.client.messenger import Messenger
from bocage.client.profile import OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.dynamodb_store import BATCH_SIZE, DynamoDbStore
from chalicelib.adapters.records import keys
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.adapters.store_items import item_size
from chalicelib.domain.encoding import b64d
from chalicelib.domain.messages_api import SendResult
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY
from chalicelib.ports import Item
from chalicelib.services.retention import JobReport
from chalicelib.settings import Settings
from tests.support import RecordingMailer, RecordingPush, SignedApi, messenger_for, scan_all

REGION = "eu-west-3"
TABLE = "bocage-bench-retention"
PER = 10_000  # section 2 reports figures per this many messages
CHANNELS = 10  # channels per 10,000 messages in section 2: 1,000 messages each
TEXT_LENGTHS = (100, 1_000)  # characters of French text in section 1
JOB_TEXT_LENGTH = 100  # characters of each message seeded for section 2
LONG_DAYS = 365  # retention while the messages are sent
SHORT_DAYS = 90  # retention the organisation then switches to
AGE_DAYS = 200  # how much older the older half is: past SHORT_DAYS, within LONG_DAYS
KB = 1024
STORAGE_OVERHEAD = 100  # bytes of indexing overhead DynamoDB bills per stored item
FRENCH = (
    "Le conseil municipal se réunira jeudi à 18 h 30 à la mairie, salle des fêtes. À l'ordre du "
    "jour : travaux de voirie rue de l'Église, cantine scolaire, éclairage public du hameau des "
    "Prés, subventions aux associations et questions diverses. Les élus et agents qui ne pourront "
    "être présents sont priés de prévenir le secrétariat avant mercredi midi. "
)
ITEM_KINDS = (keys.MESSAGE_PREFIX, keys.MARKER_PREFIX, keys.KEY_PREFIX)


def require(condition: bool, problem: str) -> None:
    """Stop the bench when the set-up is not what the figures assume (never used for timings)."""
    if not condition:
        raise SystemExit(f"retention bench: {problem}")


def french_text(length: int, variant: int) -> str:
    """``length`` characters of French (accents included), starting at a varying offset."""
    start = variant % len(FRENCH)
    return (FRENCH * (length // len(FRENCH) + 2))[start : start + length]


def text_content(length: int, variant: int) -> dict[str, Any]:
    """A message's content exactly as ``Messenger.send_text`` builds it."""
    return {"type": "text", "text": french_text(length, variant)}


# -- stores and the assembled app -----------------------------------------------------------------


class BatchCountingStore(CountingStore):
    """A CountingStore that also counts batch_write calls and the BatchWriteItem requests they make."""

    def batch_write(self, puts: Iterable[Item] = (), deletes: Iterable[tuple[str, str]] = ()) -> None:
        puts, deletes = list(puts), list(deletes)
        size = len(puts) + len(deletes)
        self.counts["batch_write call"] += 1
        self.counts["BatchWriteItem request"] += math.ceil(size / BATCH_SIZE)
        super().batch_write(puts, deletes)


class ApiCallCounter:
    """Counts the DynamoDB API requests a boto3 client sends, by operation name."""

    def __init__(self, store: DynamoDbStore) -> None:
        self.counts: Counter[str] = Counter()
        store._client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[str(model.name)] += 1

    def reset(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


@contextmanager
def raw_store(kind: str, clock: ManualClock) -> Iterator[SqliteStore | DynamoDbStore]:
    """A fresh store: a SQLite file in a temporary directory, or a table in in-process moto."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bocage-retention-") as tmp:
            sqlite = SqliteStore(os.path.join(tmp, "bench.sqlite3"), clock)
            try:
                yield sqlite
            finally:
                sqlite.close()
        return
    from moto import mock_aws

    with mock_aws():
        dynamo = DynamoDbStore(TABLE, clock, region=REGION)
        dynamo.ensure_table()
        yield dynamo


@dataclass
class Channel:
    channel_id: str
    epoch: int


@dataclass
class Deployment:
    """The app over one fresh store, with an owner (who sends) and a reader in the organisation."""

    kind: str
    raw: SqliteStore | DynamoDbStore
    store: BatchCountingStore
    clock: ManualClock
    container: wiring.Container
    owner: Messenger
    reader: Messenger
    reader_member_id: str
    principal: Principal

    def open_channel(self, name: str) -> Channel:
        """A group with the reader in it, and the owner's sender key handed out (over the API)."""
        channel_id = self.owner.create_channel("group", name)["channel_id"]
        self.owner.add_member(channel_id, self.reader_member_id)
        epoch = self.owner.distribute_key(channel_id)
        return Channel(channel_id, epoch)

    def send_direct(self, channel: Channel, content: dict[str, Any]) -> SendResult:
        """Seal and sign on the client side, then hand the envelope to the messaging service."""
        message_id = new_message_id()
        index, key = self.owner.ring.next_key(channel.channel_id, channel.epoch, message_id, self.clock.now())
        envelope = seal_message(
            self.owner.keys,
            key,
            index=index,
            channel_id=channel.channel_id,
            epoch=channel.epoch,
            message_id=message_id,
            content=content,
            sent_at_ms=self.clock.now() * 1000,
        )
        return self.container.messaging.send(self.principal, envelope)

    def stored(self, channel_id: str | None = None) -> list[Item]:
        """Every raw item of the store (or of one channel), expired or not."""
        rows = scan_all(self.raw)
        return rows if channel_id is None else [r for r in rows if r["pk"] == f"CHAN#{channel_id}"]


@contextmanager
def deployed(kind: str) -> Iterator[Deployment]:
    from chalice.test import Client

    from app import app

    clock = ManualClock()
    operator = OperatorKey.generate()
    with raw_store(kind, clock) as raw, tempfile.TemporaryDirectory(prefix="bocage-profiles-") as profiles:
        store = BatchCountingStore(raw)
        settings = Settings(public_url="https://bench.invalid", operator_keys=(operator.public_key,))
        container = wiring.build(
            settings, store=store, clock=clock, mailer=RecordingMailer(), push=RecordingPush()
        )
        wiring.use(container)
        try:
            with Client(app) as client:
                api = SignedApi(client.http, clock)
                created = api.create_org(operator)
                owner_keys, reply = api.activate(created["activation_code"], "Maire")
                require(reply.status == 201, f"owner activation answered {reply.status}: {reply.body}")
                reader_keys, reader_info = api.join(owner_keys, "Agent Dupont")
                yield Deployment(
                    kind=kind,
                    raw=raw,
                    store=store,
                    clock=clock,
                    container=container,
                    owner=messenger_for(api, owner_keys, Path(profiles) / "owner", dict(reply.body)),
                    reader=messenger_for(api, reader_keys, Path(profiles) / "reader", reader_info),
                    reader_member_id=reader_info["member_id"],
                    principal=container.auth.device_principal(owner_keys.device_id),
                )
        finally:
            wiring.use(None)


def use_placeholder_aws_credentials() -> None:
    """moto needs credentials to sign with; never real ones."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = "bench"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "bench"  # a placeholder: moto only
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


# -- section 1: bytes per message -----------------------------------------------------------------


def sqlite_file_bytes(path: str) -> int:
    """Main file plus WAL, after a checkpoint that copies the WAL back and truncates it."""
    with closing(sqlite3.connect(path)) as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    require(busy == 0, "the WAL checkpoint was blocked by a reader")
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def sqlite_row_bytes(path: str, channel_id: str) -> dict[str, tuple[int, int]]:
    """(rows, bytes of pk + sk + JSON) per item kind of one channel, as stored in the file."""
    query = (
        "SELECT substr(sk, 1, 4), count(*), "
        "sum(length(CAST(pk AS BLOB)) + length(CAST(sk AS BLOB)) + length(CAST(data AS BLOB))) "
        "FROM items WHERE pk = ? GROUP BY 1"
    )
    with closing(sqlite3.connect(path)) as db:
        return {kind: (rows, size) for kind, rows, size in db.execute(query, (f"CHAN#{channel_id}",))}


def moto_item_sizes(channel_id: str) -> dict[str, list[int]]:
    """moto's own size accounting (``Item.size()``) of one channel's items, by kind."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE)
    sizes: dict[str, list[int]] = {}
    for item in table.all_items():
        sort_key = item.range_key
        if item.hash_key.value == f"CHAN#{channel_id}" and sort_key is not None:
            sizes.setdefault(str(sort_key.value)[:4], []).append(int(item.size()))
    return sizes


def mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class SizeFigures:
    adapter: str
    length: int
    messages: int
    envelope: str  # content bytes -> padded -> ciphertext -> base64 characters
    file_growth: float = 0.0
    page_size: int = 0
    rows: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    items: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    moto: dict[str, list[int]] = dataclasses.field(default_factory=dict)


def describe_envelope(content: dict[str, Any], ciphertext: str) -> str:
    """Content size through padding and encryption, as ``seal_message`` does it."""
    sealed_content = {"kind": "message", "target": None, "content": content}  # what is sealed (v2)
    plain = json.dumps(sealed_content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    sealed = len(b64d(ciphertext))
    return (
        f"content {len(plain)} B of JSON -> padded to {len(pad(plain))} B -> ciphertext {sealed} B "
        f"-> {len(ciphertext)} base64url characters"
    )


def same_shape(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same attribute names, and values of the same type and (for strings) length bucket."""
    return a.keys() == b.keys() and all(
        type(a[k]) is type(b[k]) and (not isinstance(a[k], str) or abs(len(a[k]) - len(b[k])) <= 4) for k in a
    )


def measure_sizes(kind: str, length: int, messages: int) -> SizeFigures:
    with deployed(kind) as d:
        channel = d.open_channel(f"Sizes {length}")
        before = sqlite_file_bytes(d.raw._path) if isinstance(d.raw, SqliteStore) else 0
        first = d.owner.send_text(channel.channel_id, french_text(length, 0))  # the whole client path
        for i in range(1, messages):
            d.send_direct(channel, text_content(length, i))
        after = sqlite_file_bytes(d.raw._path) if isinstance(d.raw, SqliteStore) else 0

        items = d.stored(channel.channel_id)
        by_sk = {i["sk"]: i for i in items}
        http_sent, direct_sent = by_sk[keys.message_sk(first["seq"])], by_sk[keys.message_sk(messages)]
        require(same_shape(http_sent, direct_sent), "direct sends store items unlike the API's")
        envelope = describe_envelope(text_content(length, messages - 1), direct_sent["ciphertext"])
        figures = SizeFigures(kind, length, messages, envelope)
        if isinstance(d.raw, SqliteStore):
            figures.file_growth = (after - before) / messages
            with closing(sqlite3.connect(d.raw._path)) as db:
                figures.page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            figures.rows = sqlite_row_bytes(d.raw._path, channel.channel_id)
        else:
            for item in items:
                figures.items.setdefault(item["sk"][:4], []).append(item_size(item))
            figures.moto = moto_item_sizes(channel.channel_id)

        opened = d.reader.read(channel.channel_id, since=messages - 1)["messages"]
        require(
            len(opened) == 1
            and opened[0]["verified"]
            and opened[0]["text"] == french_text(length, messages - 1),
            f"the reader could not open a seeded message: {opened}",
        )
        return figures


def print_sizes(figures: list[SizeFigures]) -> None:
    print("1. Bytes stored per message (one channel and a fresh store per text size)")
    for f in figures:
        if f.adapter == "sqlite":
            print(f"   {f.length:>5,}-character text: {f.envelope}")
    sqlite = [f for f in figures if f.adapter == "sqlite"]
    if sqlite:
        print()
        print(f"   SQLite ({sqlite[0].page_size:,}-byte pages)")
        print("                                 file growth    row bytes (pk + sk + JSON)   file growth")
        print("   text           messages     per message      MSG#     MID#    message    / row bytes")
        for f in sqlite:
            n = f.messages
            msg, mid = f.rows.get(keys.MESSAGE_PREFIX, (0, 0)), f.rows.get(keys.MARKER_PREFIX, (0, 0))
            require(msg[0] == n and mid[0] == n, f"expected {n} MSG# and MID# rows, found {msg[0]}, {mid[0]}")
            per_row = (msg[1] + mid[1]) / n
            print(
                f"   {f.length:>5,} chars   {n:>10,} {f.file_growth:>12,.0f} B {msg[1] / n:>8,.0f} "
                f"{mid[1] / n:>8,.0f} {per_row:>10,.0f} {f.file_growth / per_row:>12.2f}"
            )
    dynamo = [f for f in figures if f.adapter == "dynamodb"]
    if dynamo:
        print()
        print(
            "   DynamoDB (moto)               item_size (bytes)            moto    WCU per   storage billed"
        )
        print("   text           messages      MSG#     MID#    message   message   MSG# put    per message")
        for f in dynamo:
            sizes, markers = f.items.get(keys.MESSAGE_PREFIX, []), f.items.get(keys.MARKER_PREFIX, [])
            n = f.messages
            require(len(sizes) == n and len(markers) == n, f"expected {n} MSG# and MID# items")
            moto = mean(f.moto.get(keys.MESSAGE_PREFIX, [])) + mean(f.moto.get(keys.MARKER_PREFIX, []))
            per_message = mean(sizes) + mean(markers)
            wcu = math.ceil(max(sizes) / KB)
            billed = per_message + 2 * STORAGE_OVERHEAD
            print(
                f"   {f.length:>5,} chars   {n:>10,} {mean(sizes):>9,.0f} {mean(markers):>8,.0f}"
                f" {per_message:>10,.0f} {moto:>9,.0f} {wcu:>10} {billed:>12,.0f} B"
            )
        print(
            "   item_size counts a number as its decimal digits (DynamoDB: about 1 byte per 2 digits + 1),"
            "\n   so it slightly overstates; storage billed = item_size of MSG# + MID# + 2 x 100 B overhead."
        )


# -- section 2: the retention-change job ----------------------------------------------------------


@dataclass
class JobRun:
    messages: int
    seconds: float
    ops: Counter[str]
    api: Counter[str]
    report: JobReport
    before: Counter[str]
    after: Counter[str]
    channels: int
    reader_error: str | None  # why the reader could not open the newest message, if it could not
    seed_seconds: float


def count_kinds(items: list[Item]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for item in items:
        if item["pk"].startswith("CHAN#"):
            kind = next((k for k in ITEM_KINDS if item["sk"].startswith(k)), "other")
            counts[kind] += 1
    return counts


def channels_for(messages: int) -> int:
    """As many channels as keep 1,000 messages in each, so figures scale linearly to 10,000."""
    return max(1, round(messages * CHANNELS / PER))


def job_run(kind: str, messages: int) -> JobRun:
    """One fresh store: seed, shorten the retention, and time the job that follows."""
    with deployed(kind) as d:
        d.container.retention.set_org(d.principal, LONG_DAYS)
        d.container.retention.run()  # nothing to do yet: clears the job this setting scheduled
        channels = [d.open_channel(f"Channel {i}") for i in range(channels_for(messages))]
        older = messages // 2
        started = time.perf_counter()
        for i in range(older):
            d.send_direct(channels[i % len(channels)], text_content(JOB_TEXT_LENGTH, i))
        d.clock.advance(AGE_DAYS * DAY)
        for i in range(older, messages):
            d.send_direct(channels[i % len(channels)], text_content(JOB_TEXT_LENGTH, i))
        seed_seconds = time.perf_counter() - started
        d.container.retention.set_org(d.principal, SHORT_DAYS)
        before = count_kinds(d.stored())

        api = ApiCallCounter(d.raw) if isinstance(d.raw, DynamoDbStore) else None
        d.store.reset()
        started = time.perf_counter()
        report = d.container.retention.run()
        seconds = time.perf_counter() - started
        ops = d.store.reset()
        calls = api.reset() if api else Counter()

        require(report.finished != [], "the job did not finish")
        after = count_kinds(d.stored())
        # The younger half must stay readable: the reader (who never read before) opens the newest.
        newest = channels[(messages - 1) % len(channels)].channel_id
        seq = d.container.channels.state(newest).seq
        shown = d.reader.read(newest, since=seq - 1)["messages"]
        require(len(shown) == 1, f"the newest message of {newest} is not served: {shown}")
        error = None if shown[0]["verified"] else str(shown[0].get("error"))
        return JobRun(
            messages, seconds, ops, calls, report, before, after, len(channels), error, seed_seconds
        )


JOB_COLUMNS = {"sqlite": "SQLite", "dynamodb": "DynamoDB (moto)"}
JOB_OPS = (
    ("query", "query pages"),
    ("get", "gets"),
    ("put", "puts (job checkpoints)"),
    ("batch_put", "batch puts (items re-stamped)"),
    ("batch_delete", "batch deletes (items)"),
    ("delete", "deletes (the finished job)"),
    ("increment", "increments"),
    ("batch_write call", "batch_write calls (one per page)"),
    ("BatchWriteItem request", "BatchWriteItem requests (<= 25 items)"),
)
JOB_REPORT = (
    ("pages", "pages"),
    ("items scanned", "scanned"),
    ("items re-stamped", "restamped"),
    ("items deleted", "deleted"),
)


def print_row(label: str, values: list[str]) -> None:
    print(f"   {label:<44}" + "".join(f"{v:>24}" for v in values))


def job_scale(runs: list[JobRun]) -> float:
    """The factor from the messages seeded to the PER messages the figures are quoted for."""
    return PER / runs[0].messages


def print_job(results: dict[str, list[JobRun]]) -> None:
    print()
    print(
        f"2. Retention change 1 year -> 3 months: the job's cost per {PER:,} messages\n"
        f"   ({JOB_TEXT_LENGTH}-character texts, 1,000 per channel; half sent {AGE_DAYS} days before the"
        f" change, half just before it;\n   each message is a MSG# and a MID# item, and each channel holds"
        f" one sender key item (KEY#), uploaded {AGE_DAYS} days before)"
    )
    print()
    print_row("", [JOB_COLUMNS[c] for c in results])
    print_job_timing(results)
    print_job_operations(results)
    print_job_outcome(results)
    print_job_notes(results)


def print_job_timing(results: dict[str, list[JobRun]]) -> None:
    scales = {c: job_scale(runs) for c, runs in results.items()}
    print_row("messages seeded per run", [f"{runs[0].messages:,}" for runs in results.values()])
    print_row("channels", [str(runs[0].channels) for runs in results.values()])
    print_row("runs (fresh store each)", [str(len(runs)) for runs in results.values()])
    print_row("scale to 10,000 messages", [f"x {scales[c]:g}" for c in results])
    print_row(
        "wall time of run(), median (min-max)",
        [
            f"{statistics.median(r.seconds for r in runs) * scales[c]:.2f} s "
            f"({min(r.seconds for r in runs) * scales[c]:.2f}-"
            f"{max(r.seconds for r in runs) * scales[c]:.2f})"
            for c, runs in results.items()
        ],
    )


def print_job_operations(results: dict[str, list[JobRun]]) -> None:
    """Store operations, DynamoDB requests and the job's own report, all of the first run, scaled."""
    firsts = {c: runs[0] for c, runs in results.items()}
    scales = {c: job_scale(runs) for c, runs in results.items()}
    print("   Store operations (CountingStore, first run):")
    for key, label in JOB_OPS:
        print_row(f"  {label}", [f"{first.ops[key] * scales[c]:,.0f}" for c, first in firsts.items()])
    if "dynamodb" in firsts:
        calls = firsts["dynamodb"].api
        print("   DynamoDB API requests (moto, first run):")
        for name in sorted(calls):
            print_row(
                f"  {name}", ["" if c != "dynamodb" else f"{calls[name] * scales[c]:,.0f}" for c in firsts]
            )
    print("   Job report (first run):")
    for label, attr in JOB_REPORT:
        print_row(
            f"  {label}", [f"{getattr(first.report, attr) * scales[c]:,.0f}" for c, first in firsts.items()]
        )


def print_job_outcome(results: dict[str, list[JobRun]]) -> None:
    """What the job left stored, whether the reader still opens the newest message, seeding time."""
    print("   Stored items before -> after the job (first run, not scaled):")
    for prefix in ITEM_KINDS:
        print_row(
            f"  {prefix}",
            [f"{runs[0].before[prefix]:,} -> {runs[0].after[prefix]:,}" for runs in results.values()],
        )
    print_row(
        "reader opens the newest message afterwards",
        ["yes" if all(r.reader_error is None for r in runs) else "NO" for runs in results.values()],
    )
    print_row(
        "seeding time per run, median (not scaled)",
        [f"{statistics.median(r.seed_seconds for r in runs):.1f} s" for runs in results.values()],
    )


def print_job_notes(results: dict[str, list[JobRun]]) -> None:
    """How scaled figures were scaled, and why the reader failed, if it did."""
    for c, runs in results.items():
        if job_scale(runs) != 1:
            print(
                f"   {JOB_COLUMNS[c]}: figures scaled linearly from {runs[0].messages:,} messages"
                f" (x {job_scale(runs):g}), wall time included; the\n   job's fixed operations (list jobs,"
                " list channels, re-read and delete the job) are multiplied too."
            )
    errors = {r.reader_error for runs in results.values() for r in runs if r.reader_error}
    for error in sorted(errors):
        print(f"   The reader, after the job: {error!r}")
    if errors:
        print(
            f"   (the channel's KEY# item was uploaded {AGE_DAYS} days earlier and sealed keys live"
            f" 2 x {SHORT_DAYS} + 1 days, so the job deleted it\n   while the sender still uses that"
            " key: messages sent under it stay stored but the reader can no longer open them)"
        )


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages per measurement (SQLite)")
    parser.add_argument("--runs", type=int, default=3, help="fresh runs of the job to take the median of")
    parser.add_argument(
        "--moto-messages",
        type=int,
        default=1_000,
        help="messages per measurement on in-process moto (figures scaled to 10,000)",
    )
    parser.add_argument("--skip-moto", action="store_true", help="SQLite only")
    args = parser.parse_args()
    if args.messages < 2 or args.moto_messages < 2 or args.runs < 1:
        parser.error("--messages and --moto-messages must be at least 2, --runs at least 1")
    use_placeholder_aws_credentials()
    adapters = {"sqlite": args.messages} | ({} if args.skip_moto else {"dynamodb": args.moto_messages})
    print(
        f"Retention bench: Python {platform.python_version()}, {os.cpu_count()} cores; "
        + ", ".join(f"{k} {n:,} messages" for k, n in adapters.items())
        + f", {args.runs} job runs each",
        flush=True,
    )
    print()

    sizes = [measure_sizes(kind, length, n) for kind, n in adapters.items() for length in TEXT_LENGTHS]
    print_sizes(sizes)
    jobs = {kind: [job_run(kind, n) for _ in range(args.runs)] for kind, n in adapters.items()}
    print_job(jobs)


if __name__ == "__main__":
    main()

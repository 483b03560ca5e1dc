"""One contract for every Store adapter: SQLite on a real file, DynamoDB on moto.

Set BOCAGE_DYNAMODB_ENDPOINT (e.g. http://localhost:8000 for DynamoDB Local or ScyllaDB
Alternator) to run the DynamoDB half against that server instead of in-process moto.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.dynamodb_store import DynamoDbStore
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.adapters.store_items import encode_cursor
from chalicelib.errors import BadRequest, ConditionFailed, ItemTooLarge
from chalicelib.ports import MAX_ITEM_BYTES, Store
from tests.moto_locking import serialise_moto_dynamodb

REGION = "eu-west-3"
ENDPOINT = os.environ.get("BOCAGE_DYNAMODB_ENDPOINT")
ROOT = Path(__file__).resolve().parents[2]


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "data" / "bocage.sqlite3"), clock)
    yield store
    store.close()


@pytest.fixture
def dynamodb_store(aws_env: None, clock: ManualClock) -> Iterator[DynamoDbStore]:
    if ENDPOINT:
        client = boto3.client("dynamodb", region_name=REGION, endpoint_url=ENDPOINT)
        table = f"bocage-test-{uuid.uuid4().hex[:12]}"
        store = DynamoDbStore(table, clock, client=client)
        store.ensure_table()
        yield store
        client.delete_table(TableName=table)
        return
    with mock_aws(), serialise_moto_dynamodb():
        store = DynamoDbStore("bocage-test", clock, region=REGION)
        store.ensure_table()
        yield store


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Store:
    adapter: Store = request.getfixturevalue(f"{request.param}_store")
    return adapter


def _put_all(store: Store, pk: str, sks: list[str], **attrs: Any) -> None:
    for sk in sks:
        store.put({"pk": pk, "sk": sk, **attrs})


def _sks(items: list[dict[str, Any]]) -> list[str]:
    return [item["sk"] for item in items]


def _all_pages(
    store: Store, pk: str, limit: int, cursor: str | None = None, **kwargs: Any
) -> list[list[str]]:
    pages = []
    while True:
        page = store.query(pk, limit=limit, cursor=cursor, **kwargs)
        pages.append(_sks(page.items))
        if page.cursor is None:
            return pages
        cursor = page.cursor


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# -- put / get ---------------------------------------------------------------------------


def test_round_trip_keeps_every_value_type(store: Store, clock: ManualClock) -> None:
    item = {
        "pk": "ORG#1",
        "sk": "META",
        "text": "Bocage, é, 森, 🌳",
        "empty": "",
        "zero": 0,
        "negative": -42,
        "big": 2**63 + 1,
        "widest": 10**38 - 1,
        "yes": True,
        "no": False,
        "nothing": None,
        "list": [1, "two", [3, None], {"four": False}],
        "map": {"nested": {"deep": [True, "x"]}, "n": 7},
        "expires_at": clock.now() + 60,
    }
    store.put(item)
    got = store.get("ORG#1", "META")
    assert got == item
    # == would equate True with 1: JSON keeps booleans and numbers apart.
    assert json.dumps(got, sort_keys=True) == json.dumps(item, sort_keys=True)
    assert type(got["big"]) is int and type(got["map"]["n"]) is int
    assert store.get("ORG#1", "OTHER") is None


def test_binary_attributes_round_trip_beside_the_others(store: Store, clock: ManualClock) -> None:
    """A message's ciphertext is stored as its bytes: every byte value (a NUL, bytes that are not
    UTF-8) comes back as bytes, next to text, numbers and maps, through get, query, conditions
    and an increment of the same item."""
    every_byte = bytes(range(256))
    item = {
        "pk": "CHAN#1",
        "sk": "MSG#1",
        "c": every_byte,
        "n": b"\x00" * 24,
        "empty": b"",
        "text": "\u0000 in text, é",
        "map": {"k": [1, "x"]},
        "expires_at": clock.now() + 60,
    }
    store.put(item)
    got = store.get("CHAN#1", "MSG#1")
    assert got == item and type(got["c"]) is bytes and type(got["text"]) is str
    assert store.query("CHAN#1", prefix="MSG#", limit=5).items == [item]
    store.put({**item, "c": b"second"}, if_match={"n": b"\x00" * 24})
    with pytest.raises(ConditionFailed):
        store.put({**item, "c": b"third"}, if_match={"n": b"\x01"})
    store.increment("CHAN#1", "MSG#1", "count", 2)
    got = store.get("CHAN#1", "MSG#1")
    assert got is not None and got["c"] == b"second" and got["n"] == b"\x00" * 24 and got["count"] == 2


def test_binary_values_inside_a_list_or_map_are_refused(store: Store) -> None:
    for value in ([b"x"], {"inner": b"x"}):
        with pytest.raises(ValueError, match="binary values only as an item's own attributes"):
            store.put({"pk": "P", "sk": "S", "value": value})
    assert store.get("P", "S") is None


@pytest.mark.parametrize("value", [1.5, [1, 2.0], {"price": 0.1}])
def test_float_values_are_rejected(store: Store, value: Any) -> None:
    with pytest.raises(ValueError, match="float"):
        store.put({"pk": "P", "sk": "S", "value": value})
    assert store.get("P", "S") is None


def test_put_if_absent_conflict_keeps_the_original(store: Store) -> None:
    store.put({"pk": "INVITE#h", "sk": "META", "who": "first"}, if_absent=True)
    with pytest.raises(ConditionFailed):
        store.put({"pk": "INVITE#h", "sk": "META", "who": "second"}, if_absent=True)
    assert store.get("INVITE#h", "META") == {"pk": "INVITE#h", "sk": "META", "who": "first"}


def test_put_if_absent_succeeds_over_an_expired_item(store: Store, clock: ManualClock) -> None:
    store.put({"pk": "NONCE#d", "sk": "n1", "expires_at": clock.now() + 10})
    clock.advance(9)
    with pytest.raises(ConditionFailed):
        store.put({"pk": "NONCE#d", "sk": "n1"}, if_absent=True)
    clock.advance(1)  # expires_at == now: expired
    store.put({"pk": "NONCE#d", "sk": "n1", "round": 2}, if_absent=True)
    assert store.get("NONCE#d", "n1") == {"pk": "NONCE#d", "sk": "n1", "round": 2}


def test_put_if_match(store: Store, clock: ManualClock) -> None:
    store.put({"pk": "INV#1", "sk": "META", "state": "pending", "n": 1, "tags": ["a"]})
    store.put({"pk": "INV#1", "sk": "META", "state": "used", "n": 2}, if_match={"state": "pending", "n": 1})
    assert store.get("INV#1", "META") == {"pk": "INV#1", "sk": "META", "state": "used", "n": 2}

    for expected in ({"state": "pending"}, {"n": True}, {"missing_attribute": "x"}):
        with pytest.raises(ConditionFailed):
            store.put({"pk": "INV#1", "sk": "META", "state": "stolen"}, if_match=expected)
    assert store.get("INV#1", "META") == {"pk": "INV#1", "sk": "META", "state": "used", "n": 2}

    with pytest.raises(ConditionFailed):
        store.put({"pk": "INV#2", "sk": "META", "state": "used"}, if_match={"state": "pending"})
    assert store.get("INV#2", "META") is None

    # None expects the attribute absent, as items store no None (keys.record drops them).
    kept = {"pk": "INV#1", "sk": "META", "state": "kept", "n": 3}
    store.put(kept, if_match={"state": "used", "note": None})
    with pytest.raises(ConditionFailed):
        store.put({"pk": "INV#1", "sk": "META", "state": "lost"}, if_match={"n": None})
    assert store.get("INV#1", "META") == {"pk": "INV#1", "sk": "META", "state": "kept", "n": 3}

    # An expired item counts as missing.
    store.put({"pk": "INV#3", "sk": "META", "state": "pending", "expires_at": clock.now() + 5})
    clock.advance(5)
    with pytest.raises(ConditionFailed):
        store.put({"pk": "INV#3", "sk": "META", "state": "used"}, if_match={"state": "pending"})


@pytest.mark.parametrize("expires_at", [2**63, 10**37, -1, True, "1700000000", None])
def test_expires_at_must_be_an_epoch_within_64_bits(store: Store, expires_at: Any) -> None:
    # SQLite stores 64-bit integers: a wider expiry overflowed there while DynamoDB took it.
    with pytest.raises(ValueError, match="expires_at"):
        store.put({"pk": "P", "sk": "S", "expires_at": expires_at})
    with pytest.raises(ValueError, match="expires_at"):
        store.put({"pk": "P", "sk": "S", "expires_at": expires_at}, if_absent=True)
    with pytest.raises(ValueError, match="expires_at"):
        store.batch_write(puts=[{"pk": "P", "sk": "B", "expires_at": expires_at}])
    if expires_at is not None:  # None means "no expiry" to increment
        with pytest.raises(ValueError, match="expires_at"):
            store.increment("P", "C", "n", expires_at=expires_at)
    assert store.query("P").items == []


def test_expires_at_bounds_are_inclusive_of_zero_and_below_two_to_the_63(
    store: Store, clock: ManualClock
) -> None:
    latest = 2**63 - 1
    store.put({"pk": "P", "sk": "far", "expires_at": latest})
    assert store.get("P", "far") == {"pk": "P", "sk": "far", "expires_at": latest}
    assert store.increment("P", "C", "n", expires_at=latest) == 1
    store.put({"pk": "P", "sk": "epoch", "expires_at": 0})  # long expired: hidden at once
    assert store.get("P", "epoch") is None
    assert _sks(store.query("P").items) == ["C", "far"]


def test_put_rejects_both_conditions(store: Store) -> None:
    with pytest.raises(ValueError):
        store.put({"pk": "P", "sk": "S"}, if_absent=True, if_match={"a": 1})


def test_item_over_the_size_limit_is_rejected(store: Store) -> None:
    with pytest.raises(ItemTooLarge, match=f"over the {MAX_ITEM_BYTES}-byte limit") as raised:
        store.put({"pk": "CHAN#c", "sk": "MSG#big", "blob": "x" * 500_000})
    assert "409600" in str(raised.value)
    assert store.get("CHAN#c", "MSG#big") is None
    with pytest.raises(ItemTooLarge):
        store.batch_write(puts=[{"pk": "CHAN#c", "sk": "MSG#big2", "blob": "é" * 250_000}])
    assert store.query("CHAN#c").items == []
    store.put({"pk": "CHAN#c", "sk": "MSG#fits", "blob": "x" * 390_000})
    assert store.get("CHAN#c", "MSG#fits") is not None


def test_delete_of_a_missing_item_is_not_an_error(store: Store) -> None:
    store.delete("NOPE", "NOTHING")
    store.put({"pk": "P", "sk": "S"})
    store.delete("P", "S")
    store.delete("P", "S")
    assert store.get("P", "S") is None


# -- query -------------------------------------------------------------------------------


def test_query_by_sort_key_prefix(store: Store) -> None:
    _put_all(store, "CHAN#c", ["META", "MSG", "MSG#1", "MSG#2", "MSG#é", "MSH#x", "MEMBER#a", "KEY#1#d"])
    store.put({"pk": "CHAN#other", "sk": "MSG#1"})
    assert _sks(store.query("CHAN#c", prefix="MSG#").items) == ["MSG#1", "MSG#2", "MSG#é"]
    assert _sks(store.query("CHAN#c", prefix="ME").items) == ["MEMBER#a", "META"]
    assert _sks(store.query("CHAN#c", prefix="MSG#é").items) == ["MSG#é"]
    assert store.query("CHAN#c", prefix="ZZZ").items == []
    assert len(store.query("CHAN#c").items) == 8
    assert store.query("CHAN#none").items == []


def test_query_inclusive_range(store: Store) -> None:
    _put_all(store, "P", [f"D{i:02d}" for i in range(1, 11)])
    assert _sks(store.query("P", start="D03", end="D06").items) == ["D03", "D04", "D05", "D06"]
    assert _sks(store.query("P", start="D08").items) == ["D08", "D09", "D10"]
    assert _sks(store.query("P", end="D02").items) == ["D01", "D02"]
    assert _sks(store.query("P", start="D03x", end="D05").items) == ["D04", "D05"]
    assert store.query("P", start="D06", end="D03").items == []
    with pytest.raises(ValueError):
        store.query("P", prefix="D", start="D01")


def test_query_descending(store: Store) -> None:
    _put_all(store, "P", ["A1", "B1", "B2", "B3", "C1"])
    assert _sks(store.query("P", descending=True).items) == ["C1", "B3", "B2", "B1", "A1"]
    assert _sks(store.query("P", prefix="B", descending=True).items) == ["B3", "B2", "B1"]
    assert _sks(store.query("P", start="A1", end="B2", descending=True).items) == ["B2", "B1", "A1"]
    assert _all_pages(store, "P", 2, descending=True) == [["C1", "B3"], ["B2", "B1"], ["A1"]]
    assert _all_pages(store, "P", 2, prefix="B", descending=True) == [["B3", "B2"], ["B1"]]


def test_paging_gathers_every_item_exactly_once(store: Store) -> None:
    sks = [f"MSG#{i:03d}" for i in range(10)]
    _put_all(store, "CHAN#c", sks, body="opaque")
    pages = _all_pages(store, "CHAN#c", 3, prefix="MSG#")
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [sk for page in pages for sk in page] == sks
    # An exact multiple ends without an empty trailing page.
    assert _all_pages(store, "CHAN#c", 5) == [sks[:5], sks[5:]]
    assert store.query("CHAN#c", limit=10).cursor is None


def test_cursor_is_stable_when_items_are_inserted_between_pages(store: Store) -> None:
    _put_all(store, "CHAN#c", [f"MSG#{i:02d}" for i in range(2, 21, 2)])
    first = store.query("CHAN#c", prefix="MSG#", limit=3)
    assert _sks(first.items) == ["MSG#02", "MSG#04", "MSG#06"]
    # Items land before the cursor, the cursor's own item disappears, one lands after it.
    _put_all(store, "CHAN#c", ["MSG#01", "MSG#03", "MSG#05", "MSG#07"])
    store.delete("CHAN#c", "MSG#06")
    second = store.query("CHAN#c", prefix="MSG#", limit=3, cursor=first.cursor)
    assert _sks(second.items) == ["MSG#07", "MSG#08", "MSG#10"]
    assert second.cursor is not None
    rest = _all_pages(store, "CHAN#c", 3, cursor=second.cursor, prefix="MSG#")
    assert rest == [["MSG#12", "MSG#14", "MSG#16"], ["MSG#18", "MSG#20"]]


def test_malformed_cursor_is_a_bad_request(store: Store) -> None:
    _put_all(store, "P", ["MSG#1", "MSG#2"])
    malformed = [
        "",
        "!!!",
        "not~base64",
        _b64("not json"),
        _b64('{"other": "MSG#1"}'),
        _b64('{"sk": ""}'),
        _b64('{"sk": 5}'),
        _b64('["MSG#1"]'),
        encode_cursor("KEY#1"),  # well formed, but outside the queried prefix
    ]
    for cursor in malformed:
        with pytest.raises(BadRequest, match="invalid cursor"):
            store.query("P", prefix="MSG#", cursor=cursor)
    with pytest.raises(BadRequest):
        store.query("P", start="MSG#2", cursor=encode_cursor("MSG#1"))


@pytest.mark.parametrize(
    "sk",
    [
        "MSG#\ud800",  # a lone surrogate: valid JSON, but no UTF-8 (nor DynamoDB) key can hold it
        "MSG#" + "x" * 1021,  # 1,025 bytes: over the sort key limit
        "MSG#" + "é" * 511,  # 1,026 bytes in 515 characters: the limit counts bytes
    ],
)
def test_cursor_holding_an_impossible_sort_key_is_a_bad_request(store: Store, sk: str) -> None:
    _put_all(store, "P", ["MSG#1", "MSG#2"])
    cursor = _b64(json.dumps({"sk": sk}))  # ensure_ascii: the surrogate travels as \\ud800
    for kwargs in ({}, {"prefix": "MSG#"}, {"start": "MSG#"}, {"descending": True}):
        with pytest.raises(BadRequest, match="invalid cursor"):
            store.query("P", cursor=cursor, **kwargs)


def test_cursor_at_the_sort_key_limit_is_accepted(store: Store) -> None:
    _put_all(store, "P", ["MSG#1", "MSG#2"])
    widest = "MSG#" + "x" * 1020  # exactly 1,024 bytes
    assert store.query("P", cursor=encode_cursor(widest)).items == []
    assert _sks(store.query("P", cursor=encode_cursor(widest), descending=True).items) == ["MSG#2", "MSG#1"]


def test_expired_items_are_never_returned_though_not_deleted(store: Store, clock: ManualClock) -> None:
    start = clock.now()
    store.put({"pk": "CHAN#c", "sk": "MSG#1"})
    store.put({"pk": "CHAN#c", "sk": "MSG#2", "expires_at": start + 100})
    store.put({"pk": "CHAN#c", "sk": "MSG#3", "expires_at": start + 200})
    clock.advance(100)
    assert store.get("CHAN#c", "MSG#2") is None
    assert _sks(store.query("CHAN#c").items) == ["MSG#1", "MSG#3"]
    assert _sks(store.query("CHAN#c", prefix="MSG#", descending=True).items) == ["MSG#3", "MSG#1"]
    clock.advance(100)
    assert store.get("CHAN#c", "MSG#3") is None
    assert _sks(store.query("CHAN#c", start="MSG#2").items) == []
    # Winding the clock back shows they were only hidden: reads filter, nothing was deleted.
    clock.set(start)
    assert _sks(store.query("CHAN#c").items) == ["MSG#1", "MSG#2", "MSG#3"]


def test_paging_skips_expired_items_and_still_fills_pages(store: Store, clock: ManualClock) -> None:
    now = clock.now()
    for i in range(20):
        expires = now + 10 if i % 4 != 3 else now + 1000  # every fourth item outlives the others
        store.put({"pk": "P", "sk": f"S{i:02d}", "expires_at": expires})
    clock.advance(10)
    assert _all_pages(store, "P", 2) == [["S03", "S07"], ["S11", "S15"], ["S19"]]
    assert _all_pages(store, "P", 5, descending=True) == [["S19", "S15", "S11", "S07", "S03"]]


def test_query_limit_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError):
        store.query("P", limit=0)


# -- increment ---------------------------------------------------------------------------


def test_increment_from_zero_and_by_negative_amounts(store: Store) -> None:
    assert store.increment("ORG#o", "IMPACT", "trees") == 1
    assert store.increment("ORG#o", "IMPACT", "trees", 5) == 6
    assert store.increment("ORG#o", "IMPACT", "trees", -10) == -4
    assert store.increment("ORG#o", "IMPACT", "other", -3) == -3
    assert store.get("ORG#o", "IMPACT") == {"pk": "ORG#o", "sk": "IMPACT", "trees": -4, "other": -3}
    store.put({"pk": "ORG#o", "sk": "META", "name": "Les Amis"})
    assert store.increment("ORG#o", "META", "members", 2) == 2
    assert store.get("ORG#o", "META") == {"pk": "ORG#o", "sk": "META", "name": "Les Amis", "members": 2}


def test_increment_adds_to_several_counters_in_one_write(store: Store, clock: ManualClock) -> None:
    """A message number and its month's count move together (records/channels.py)."""
    assert store.increment("CHAN#c", "STATE", "seq", also={"m#2027-03": 1}) == 1
    assert store.increment("CHAN#c", "STATE", "seq", also={"m#2027-03": 1, "m#2027-04": 2}) == 2
    assert store.get("CHAN#c", "STATE") == {
        "pk": "CHAN#c",
        "sk": "STATE",
        "seq": 2,
        "m#2027-03": 2,
        "m#2027-04": 2,
    }
    store.put({"pk": "CHAN#c", "sk": "STATE", "seq": 2, "m#2027-03": "two"})
    with pytest.raises(ValueError):  # (moto, unlike DynamoDB, may apply the other additions)
        store.increment("CHAN#c", "STATE", "seq", also={"m#2027-03": 1})
    window_end = clock.now() + 60
    assert store.increment("RATE#d", "W", "hits", expires_at=window_end, also={"bytes": 9}) == 1
    clock.advance(60)
    assert store.increment("RATE#d", "W", "hits", 2, expires_at=window_end + 60, also={"bytes": 4}) == 2
    assert store.get("RATE#d", "W") == {
        "pk": "RATE#d",
        "sk": "W",
        "hits": 2,
        "bytes": 4,
        "expires_at": window_end + 60,
    }


def test_increment_restarts_an_expired_counter(store: Store, clock: ManualClock) -> None:
    window_end = clock.now() + 60
    assert store.increment("RATE#d", "W", "hits", expires_at=window_end) == 1
    assert store.increment("RATE#d", "W", "hits") == 2
    assert store.get("RATE#d", "W") == {"pk": "RATE#d", "sk": "W", "hits": 2, "expires_at": window_end}
    clock.advance(60)
    assert store.get("RATE#d", "W") is None
    assert store.increment("RATE#d", "W", "hits", 3, expires_at=window_end + 60) == 3
    assert store.get("RATE#d", "W") == {"pk": "RATE#d", "sk": "W", "hits": 3, "expires_at": window_end + 60}


def test_increment_item_returns_the_whole_item_its_write_left(store: Store, clock: ManualClock) -> None:
    """A send numbers its message and learns the roster version in one write (records/channels.py)."""
    store.put({"pk": "CHAN#c", "sk": "STATE", "roster": 7, "roster_busy": 1, "note": "kept"})
    item = store.increment_item("CHAN#c", "STATE", "seq", also={"m#2027-03": 1})
    assert item == {
        "pk": "CHAN#c",
        "sk": "STATE",
        "roster": 7,
        "roster_busy": 1,
        "note": "kept",
        "seq": 1,
        "m#2027-03": 1,
    }
    assert store.get("CHAN#c", "STATE") == item
    assert store.increment_item("CHAN#c", "STATE", "seq") == {**item, "seq": 2}
    window_end = clock.now() + 60
    assert store.increment("RATE#d", "W", "hits", 5, expires_at=window_end, also={"bytes": 9}) == 5
    clock.advance(60)  # expired: the count restarts, and so does the item
    restarted = store.increment_item("RATE#d", "W", "hits")
    assert restarted == {"pk": "RATE#d", "sk": "W", "hits": 1}
    assert store.get("RATE#d", "W") == restarted


def test_increment_of_a_non_integer_attribute_fails(store: Store) -> None:
    store.put({"pk": "P", "sk": "S", "count": "seven"})
    with pytest.raises(ValueError):
        store.increment("P", "S", "count")
    assert store.get("P", "S") == {"pk": "P", "sk": "S", "count": "seven"}


def test_concurrent_increments_are_atomic(store: Store) -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            mine = [store.increment("ORG#o", "COUNTER", "n") for _ in range(50)]
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert store.get("ORG#o", "COUNTER") == {"pk": "ORG#o", "sk": "COUNTER", "n": 400}
    # Every increment saw a distinct value: no two read the same old count.
    assert sorted(results) == list(range(1, 401))


# -- batch -------------------------------------------------------------------------------


def test_batch_write_puts_then_deletes(store: Store, clock: ManualClock) -> None:
    puts: list[dict[str, Any]] = [
        {"pk": "CHAN#c", "sk": f"CONN#{i:03d}", "expires_at": clock.now() + 7200} for i in range(60)
    ]
    store.batch_write(puts=puts)
    assert store.query("CHAN#c", limit=100).items == puts
    store.batch_write(deletes=[(item["pk"], item["sk"]) for item in puts])
    assert store.query("CHAN#c", limit=100).items == []
    store.batch_write()  # nothing to do is fine


def test_batch_write_mixes_puts_and_deletes_and_refuses_duplicates(store: Store) -> None:
    _put_all(store, "P", ["old1", "old2"])
    store.batch_write(puts=[{"pk": "P", "sk": "new"}], deletes=[("P", "old1"), ("P", "never")])
    assert _sks(store.query("P").items) == ["new", "old2"]
    with pytest.raises(ValueError, match="more than once"):
        store.batch_write(puts=[{"pk": "P", "sk": "x"}], deletes=[("P", "x")])
    with pytest.raises(ValueError, match="float"):
        store.batch_write(puts=[{"pk": "P", "sk": "ok"}, {"pk": "P", "sk": "bad", "v": 1.0}])
    assert _sks(store.query("P").items) == ["new", "old2"]  # validated before anything is written


# -- SQLite only -------------------------------------------------------------------------


def _row_count(path: str) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    return count


def test_sqlite_file_is_created_with_wal(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    store = SqliteStore(str(path), clock)
    store.put({"pk": "P", "sk": "S"})
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_sqlite_purge_expired_removes_expired_rows_only(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    now = clock.now()
    for i in range(5):
        sqlite_store.put({"pk": "P", "sk": f"old{i}", "expires_at": now + 10})
    for i in range(3):
        sqlite_store.put({"pk": "P", "sk": f"live{i}", "expires_at": now + 1000})
    sqlite_store.put({"pk": "P", "sk": "forever"})
    path = sqlite_store._path
    assert sqlite_store.purge_expired() == 0
    clock.advance(10)
    assert _row_count(path) == 9  # hidden but still there
    assert sqlite_store.purge_expired(limit=2) == 2
    assert sqlite_store.purge_expired() == 3
    assert sqlite_store.purge_expired() == 0
    assert _row_count(path) == 4
    assert _sks(sqlite_store.query("P").items) == ["forever", "live0", "live1", "live2"]


def test_sqlite_purge_and_vacuum_shrink_the_file(sqlite_store: SqliteStore, clock: ManualClock) -> None:
    path = sqlite_store._path

    def on_disk() -> int:
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    empty = on_disk()
    expires_at = clock.now() + 60
    for start in range(0, 2000, 100):
        sqlite_store.batch_write(
            puts=[
                {"pk": f"NONCE#{i % 7}", "sk": f"n{i:05d}", "blob": "x" * 4000, "expires_at": expires_at}
                for i in range(start, start + 100)
            ]
        )
    sqlite_store.put({"pk": "P", "sk": "keep", "blob": "y" * 4000})
    full = on_disk()
    assert full > empty + 2000 * 4000
    clock.advance(60)
    assert sqlite_store.purge_all_expired(batch=300) == 2000  # in batches of 300, then a vacuum
    assert _row_count(path) == 1
    assert on_disk() < full // 10
    assert sqlite_store.get("P", "keep") == {"pk": "P", "sk": "keep", "blob": "y" * 4000}
    assert sqlite_store.purge_all_expired() == 0


def test_sqlite_vacuum_is_harmless_on_a_file_made_without_auto_vacuum(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = str(tmp_path / "old.db")
    with sqlite3.connect(path) as conn:  # a file from before auto_vacuum was enabled
        conn.execute("CREATE TABLE unrelated (x)")
    store = SqliteStore(path, clock)
    try:
        store.put({"pk": "P", "sk": "S", "expires_at": clock.now() + 1})
        clock.advance(1)
        assert store.purge_all_expired() == 1
        store.vacuum()
        assert store.get("P", "S") is None
    finally:
        store.close()


def test_serve_purges_periodically(sqlite_store: SqliteStore, clock: ManualClock) -> None:
    from bocage.local.scheduler import LocalScheduler
    from bocage.local.serve import schedule_purge

    sqlite_store.put({"pk": "P", "sk": "S", "expires_at": clock.now() + 1})
    clock.advance(1)
    scheduler = LocalScheduler(tick=0.01)
    assert schedule_purge(scheduler, sqlite_store, interval=0.01)
    scheduler.start()
    try:
        for _ in range(500):
            if _row_count(sqlite_store._path) == 0:
                break
            threading.Event().wait(0.01)
        assert _row_count(sqlite_store._path) == 0
    finally:
        scheduler.stop()
    assert not schedule_purge(LocalScheduler(), object(), interval=0.01)  # no purge method: nothing to run


def test_sqlite_short_lived_threads_share_a_bounded_pool_of_connections(
    sqlite_store: SqliteStore,
) -> None:
    """``bocage serve`` runs a thread per HTTP connection: one SQLite connection per thread
    kept two descriptors open per thread ever seen, until the server ran out of them."""

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            sqlite_store.put({"pk": "P", "sk": f"S{i:03d}", "i": i})
            assert sqlite_store.get("P", f"S{i:03d}") == {"pk": "P", "sk": f"S{i:03d}", "i": i}
        except BaseException as exc:
            errors.append(exc)

    before = open_descriptors()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    after = open_descriptors()
    assert errors == []
    assert len(sqlite_store.query("P", limit=1000).items) == 300
    # A connection holds the file and its WAL; allow a couple more for the test runner.
    assert after - before <= 2 * SqliteStore.POOL_SIZE + 2, (before, after)
    sqlite_store.close()
    assert open_descriptors() < before


def test_sqlite_second_store_on_the_same_file_sees_writes(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    other = SqliteStore(sqlite_store._path, clock)
    try:
        sqlite_store.put({"pk": "P", "sk": "S", "v": 1})
        assert other.get("P", "S") == {"pk": "P", "sk": "S", "v": 1}
        with pytest.raises(ConditionFailed):
            other.put({"pk": "P", "sk": "S", "v": 2}, if_absent=True)
        other.put({"pk": "P", "sk": "S", "v": 2}, if_match={"v": 1})
        assert sqlite_store.get("P", "S") == {"pk": "P", "sk": "S", "v": 2}
        assert other.increment("P", "C", "n") == 1
        assert sqlite_store.increment("P", "C", "n") == 2
    finally:
        other.close()


def test_sqlite_increments_are_atomic_across_processes(sqlite_store: SqliteStore) -> None:
    code = (
        "import sys\n"
        "from chalicelib.adapters.clocks import SystemClock\n"
        "from chalicelib.adapters.sqlite_store import SqliteStore\n"
        "store = SqliteStore(sys.argv[1], SystemClock())\n"
        "for _ in range(100):\n"
        "    store.increment('ORG#o', 'COUNTER', 'n')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, sqlite_store._path], cwd=ROOT, env=env)
        for _ in range(4)
    ]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0, 0, 0]
    assert sqlite_store.get("ORG#o", "COUNTER") == {"pk": "ORG#o", "sk": "COUNTER", "n": 400}


def test_sqlite_close_then_reuse(sqlite_store: SqliteStore) -> None:
    sqlite_store.put({"pk": "P", "sk": "S"})
    sqlite_store.close()
    assert sqlite_store.get("P", "S") == {"pk": "P", "sk": "S"}


# -- DynamoDB only -----------------------------------------------------------------------


def test_dynamodb_ensure_table_is_idempotent_and_enables_ttl(dynamodb_store: DynamoDbStore) -> None:
    dynamodb_store.ensure_table()
    client = dynamodb_store._client
    ttl = client.describe_time_to_live(TableName=dynamodb_store._table)["TimeToLiveDescription"]
    assert ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    assert ttl.get("AttributeName") == "expires_at"


def test_dynamodb_batch_write_sends_chunks_of_25(dynamodb_store: DynamoDbStore) -> None:
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.extend(len(requests) for requests in params["RequestItems"].values())

    dynamodb_store._client.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", record)
    dynamodb_store.batch_write(puts=[{"pk": "P", "sk": f"S{i:02d}"} for i in range(60)])
    assert sizes == [25, 25, 10]


def _stubbed_store(clock: ManualClock) -> tuple[DynamoDbStore, Stubber]:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9")
    return DynamoDbStore("tbl", clock, client=client), Stubber(client)


def test_dynamodb_batch_write_retries_unprocessed_items(aws_env: None, clock: ManualClock) -> None:
    # moto never leaves items unprocessed, so replay what throttled DynamoDB answers.
    store, stubber = _stubbed_store(clock)
    first = {"PutRequest": {"Item": {"pk": {"S": "P"}, "sk": {"S": "1"}}}}
    second = {"DeleteRequest": {"Key": {"pk": {"S": "P"}, "sk": {"S": "2"}}}}
    stubber.add_response(
        "batch_write_item",
        {"UnprocessedItems": {"tbl": [second]}},
        {"RequestItems": {"tbl": [first, second]}},
    )
    stubber.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"tbl": [second]}})
    with stubber:
        store.batch_write(puts=[{"pk": "P", "sk": "1"}], deletes=[("P", "2")])
    stubber.assert_no_pending_responses()


def test_dynamodb_ensure_table_tolerates_ttl_already_enabled(aws_env: None, clock: ManualClock) -> None:
    # Real DynamoDB refuses to enable TTL twice (moto does not), so replay its answer.
    store, stubber = _stubbed_store(clock)
    active = {"Table": {"TableName": "tbl", "TableStatus": "ACTIVE"}}
    stubber.add_response("describe_table", active, {"TableName": "tbl"})
    stubber.add_response("describe_table", active, {"TableName": "tbl"})  # the waiter's poll
    stubber.add_client_error(
        "update_time_to_live", "ValidationException", "TimeToLive is already enabled", 400
    )
    with stubber:
        store.ensure_table()
    stubber.assert_no_pending_responses()

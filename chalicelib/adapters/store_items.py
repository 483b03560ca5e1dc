"""Rules shared by every Store adapter, so SQLite and DynamoDB accept and refuse the same items.

Validation happens before any I/O: an item that one adapter would store and the other
would reject is a portability bug, so both call the helpers here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import BadRequest, ItemTooLarge
from chalicelib.ports import MAX_ITEM_BYTES, Item, Page

#: DynamoDB key attribute limits (bytes of UTF-8).
MAX_PK_BYTES = 2048
MAX_SK_BYTES = 1024
#: DynamoDB numbers hold 38 significant digits; integers stay below this bound.
MAX_INT_ABS = 10**38
EXPIRES_AT = "expires_at"
#: Expiries are epoch seconds in [0, 2**63): SQLite stores signed 64-bit integers, and every
#: adapter must refuse what one of them could not hold.
MAX_EXPIRES_AT = 2**63 - 1

# (pk, sk, item to put) or (pk, sk, None) for a delete.
BatchOp = tuple[str, str, Item | None]


def _measure_attribute(value: Any, where: str) -> int:
    """An item's own attribute: ``_measure``, and binary values (``bytes``), which are allowed
    here only, not inside a list or map: SQLite keeps them beside the item's JSON
    (sqlite_store.py), which has no bytes type."""
    return len(value) if isinstance(value, bytes) else _measure(value, where)


def _measure(value: Any, where: str) -> int:
    """Size of one attribute value the way DynamoDB counts it, refusing what it cannot hold."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int):
        if abs(value) >= MAX_INT_ABS:
            raise ValueError(f"{where}: integer {value} has more than 38 digits")
        return len(str(value))
    if isinstance(value, float):
        raise ValueError(f"{where}: float values are not allowed (use integer cents or epoch seconds)")
    if isinstance(value, list):
        # Lists and maps cost 3 bytes, plus 1 byte per element.
        return 3 + sum(1 + _measure(element, f"{where}[{i}]") for i, element in enumerate(value))
    if isinstance(value, dict):
        size = 3
        for key, element in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: map keys must be strings, not {type(key).__name__}")
            size += 1 + len(key.encode("utf-8")) + _measure(element, f"{where}.{key}")
        return size
    binary = " (binary values only as an item's own attributes)" if isinstance(value, bytes) else ""
    raise ValueError(f"{where}: unsupported value type {type(value).__name__}{binary}")


def item_size(item: Mapping[str, Any]) -> int:
    """Estimated stored size: UTF-8 bytes of attribute names and values, recursively."""
    return sum(len(name.encode("utf-8")) + _measure_attribute(value, name) for name, value in item.items())


def _check_key_part(name: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: neither SQLite nor DynamoDB can hold it
        raise ValueError(f"{name} is not valid Unicode (it holds a lone surrogate)") from None
    if size > limit:
        raise ValueError(f"{name} is over DynamoDB's {limit}-byte key limit")


def check_key(pk: Any, sk: Any) -> None:
    """Both key parts are non-empty, UTF-8 encodable strings within DynamoDB's key size limits."""
    _check_key_part("pk", pk, MAX_PK_BYTES)
    _check_key_part("sk", sk, MAX_SK_BYTES)


def check_expires_at(expires_at: Any) -> None:
    """An integer number of epoch seconds, ``0 <= expires_at < 2**63``."""
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        # DynamoDB's TTL and every expiry filter compare numbers: anything else never expires.
        raise ValueError("expires_at must be an integer (epoch seconds)")
    if not 0 <= expires_at <= MAX_EXPIRES_AT:
        raise ValueError(f"expires_at must be epoch seconds from 0 to 2**63 - 1, not {expires_at}")


def check_item(item: Mapping[str, Any]) -> None:
    """Refuse an item any adapter could not store; raise ItemTooLarge over MAX_ITEM_BYTES."""
    if not isinstance(item, Mapping):
        raise ValueError("an item must be a mapping")
    check_key(item.get("pk"), item.get("sk"))
    if EXPIRES_AT in item:
        check_expires_at(item[EXPIRES_AT])
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ItemTooLarge(
            f"item {item['pk']}/{item['sk']} is {size} bytes, over the {MAX_ITEM_BYTES}-byte limit"
        )


def check_conditions(if_absent: bool, if_match: Mapping[str, Any] | None) -> None:
    """One condition per write; expected values follow the same type rules as items."""
    if if_absent and if_match is not None:
        raise ValueError("use if_absent or if_match, not both")
    for name, value in (if_match or {}).items():
        _measure_attribute(value, f"if_match {name}")


def check_increment(pk: str, sk: str, attribute: str, amount: int, expires_at: int | None) -> None:
    check_key(pk, sk)
    if attribute in ("pk", "sk", EXPIRES_AT) or not attribute:
        raise ValueError(f"cannot increment attribute {attribute!r}")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValueError("amount must be an integer")
    if expires_at is not None:
        check_expires_at(expires_at)


def is_live(item: Mapping[str, Any], now: int) -> bool:
    """An item without expiry, or whose expiry is still ahead: what reads may return."""
    expires_at = item.get(EXPIRES_AT)
    return expires_at is None or expires_at > now


def same_value(a: Any, b: Any) -> bool:
    """Equality as DynamoDB compares: types must agree, so True is not 1."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def matches(item: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """Every expected attribute is present with the same value, or absent where ``None`` is
    expected (the ``if_match`` rule)."""
    return all(
        name not in item if value is None else name in item and same_value(item[name], value)
        for name, value in expected.items()
    )


def batch_ops(puts: Iterable[Item], deletes: Iterable[tuple[str, str]]) -> list[BatchOp]:
    """Validate a batch up front; a key may appear once, since DynamoDB rejects duplicates
    within a request and the order across chunks would otherwise be undefined."""
    ops: list[BatchOp] = []
    for item in puts:
        check_item(item)
        ops.append((item["pk"], item["sk"], dict(item)))
    for pk, sk in deletes:
        check_key(pk, sk)
        ops.append((pk, sk, None))
    seen: set[tuple[str, str]] = set()
    for pk, sk, _ in ops:
        if (pk, sk) in seen:
            raise ValueError(f"batch names {pk}/{sk} more than once")
        seen.add((pk, sk))
    return ops


@dataclass(frozen=True)
class KeyRange:
    """The sort-key condition of a query: a prefix, or an inclusive start/end range."""

    prefix: str | None = None
    start: str | None = None
    end: str | None = None

    @classmethod
    def of(cls, prefix: str | None, start: str | None, end: str | None) -> KeyRange:
        if prefix is not None and (start is not None or end is not None):
            raise ValueError("query by prefix or by start/end, not both")
        # "" as a prefix or start bound means "everything"; DynamoDB refuses empty key values.
        return cls(prefix or None, start or None, end)

    def is_empty(self) -> bool:
        """True when nothing can match (every sort key is non-empty)."""
        if self.end == "":
            return True
        return self.start is not None and self.end is not None and self.start > self.end

    def contains(self, sk: str) -> bool:
        if self.prefix is not None and not sk.startswith(self.prefix):
            return False
        if self.start is not None and sk < self.start:
            return False
        return self.end is None or sk <= self.end


def encode_cursor(sk: str) -> str:
    """Opaque cursor: the last sort key returned, so later writes cannot shift the page."""
    raw = json.dumps({"sk": sk}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor holds; anything malformed is the client's error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, TypeError, AttributeError, binascii.Error):
        raise BadRequest("invalid cursor") from None
    sk = data.get("sk") if isinstance(data, dict) else None
    if not isinstance(sk, str):
        raise BadRequest("invalid cursor")
    try:
        # The same rules as a stored sort key: otherwise SQLite or DynamoDB fails on it later.
        _check_key_part("sk", sk, MAX_SK_BYTES)
    except ValueError:
        raise BadRequest("invalid cursor") from None
    return sk


def parse_query(
    prefix: str | None, start: str | None, end: str | None, limit: int, cursor: str | None
) -> tuple[KeyRange, str | None]:
    """Validate query arguments; return the key range and the sort key to resume after.

    A cursor outside the range is refused: DynamoDB would reject it as an
    ExclusiveStartKey outside the query boundaries, SQLite would silently misbehave.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError("limit must be a positive integer")
    key_range = KeyRange.of(prefix, start, end)
    after = None if cursor is None else decode_cursor(cursor)
    if after is not None and not key_range.contains(after):
        raise BadRequest("invalid cursor")
    return key_range, after


def make_page(items: list[Item], limit: int) -> Page:
    """Adapters fetch ``limit + 1`` live items: the extra one only says that more exist."""
    if len(items) <= limit:
        return Page(items=items, cursor=None)
    page = items[:limit]
    return Page(items=page, cursor=encode_cursor(page[-1]["sk"]))

"""A Store decorator that counts operations: how benches and tests measure store cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.ports import Item, Page, Store


class CountingStore:
    """Delegates every call and counts it by operation name (batch items count one each)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def reset(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts

    @property
    def reads(self) -> int:
        return self.counts["get"] + self.counts["query"]

    @property
    def writes(self) -> int:
        return sum(self.counts[op] for op in ("put", "delete", "increment", "batch_put", "batch_delete"))

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        self.counts["get"] += 1
        return self.inner.get(pk, sk, consistent=consistent)

    def put(self, item: Item, *, if_absent: bool = False, if_match: Mapping[str, Any] | None = None) -> None:
        self.counts["put"] += 1
        self.inner.put(item, if_absent=if_absent, if_match=if_match)

    def delete(self, pk: str, sk: str) -> None:
        self.counts["delete"] += 1
        self.inner.delete(pk, sk)

    def query(
        self,
        pk: str,
        *,
        prefix: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        descending: bool = False,
        consistent: bool = True,
    ) -> Page:
        self.counts["query"] += 1
        return self.inner.query(
            pk,
            prefix=prefix,
            start=start,
            end=end,
            limit=limit,
            cursor=cursor,
            descending=descending,
            consistent=consistent,
        )

    def increment(
        self,
        pk: str,
        sk: str,
        attribute: str,
        amount: int = 1,
        *,
        expires_at: int | None = None,
        also: Mapping[str, int] | None = None,
    ) -> int:
        self.counts["increment"] += 1
        return self.inner.increment(pk, sk, attribute, amount, expires_at=expires_at, also=also)

    def increment_item(self, pk: str, sk: str, name: str, *, also: Mapping[str, int] | None = None) -> Item:
        self.counts["increment"] += 1  # the same one write
        return self.inner.increment_item(pk, sk, name, also=also)

    def batch_write(self, puts: Iterable[Item] = (), deletes: Iterable[tuple[str, str]] = ()) -> None:
        puts, deletes = list(puts), list(deletes)
        self.counts["batch_put"] += len(puts)
        self.counts["batch_delete"] += len(deletes)
        self.inner.batch_write(puts, deletes)

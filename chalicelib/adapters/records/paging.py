"""Walking every page of a partition: the one loop all services share."""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.ports import Item, Store

PAGE = 500


def query_all(
    store: Store, pk: str, prefix: str, *, page_size: int = PAGE, consistent: bool = True
) -> Iterator[Item]:
    """Every live item of ``pk`` whose sort key starts with ``prefix``, page by page."""
    cursor: str | None = None
    while True:
        page = store.query(pk, prefix=prefix, cursor=cursor, limit=page_size, consistent=consistent)
        yield from page.items
        cursor = page.cursor
        if cursor is None:
            return

"""Give moto's DynamoDB the per-item atomicity real DynamoDB has.

moto's response handlers read an item, hand it to the backend, then serialise the live
object, all without a lock: concurrent UpdateItem ADDs lose updates or return another
writer's value, and a PutItem can interleave with an UpdateItem. DynamoDB serialises the
writes to one item; running every single-item handler under one lock emulates that, so
concurrency tests check our adapter rather than the emulator.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.responses import DynamoHandler

#: The handlers our DynamoDbStore calls that read or write items.
SERIALISED_HANDLERS = ("put_item", "update_item", "delete_item", "get_item", "batch_write_item")

# One lock for every table and handler, re-entrant so that nested use cannot deadlock.
_LOCK = threading.RLock()


def _serialised(handler: Callable[..., Any]) -> Callable[..., Any]:
    # A plain function (not a bound method or partial): moto only dispatches to attributes
    # that inspect.isfunction accepts.
    @functools.wraps(handler)
    def locked(self: DynamoHandler, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return handler(self, *args, **kwargs)

    return locked


@contextmanager
def serialise_moto_dynamodb() -> Iterator[None]:
    """Within the block, moto's single-item DynamoDB handlers run one at a time.

    Covers in-process ``mock_aws`` and ``ThreadedMotoServer`` alike (both dispatch to
    ``DynamoHandler``); a real DynamoDB-API server needs nothing.
    """
    originals = {name: DynamoHandler.__dict__[name] for name in SERIALISED_HANDLERS}
    for name, handler in originals.items():
        setattr(DynamoHandler, name, _serialised(handler))
    try:
        yield
    finally:
        for name, handler in originals.items():
            setattr(DynamoHandler, name, handler)

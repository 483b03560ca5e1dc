"""DynamoDbStore over a real socket: moto's server mode on loopback, reached by endpoint_url.

The contract suite patches botocore in-process; this proves the network path the
adapter takes to Alternator, DynamoDB Local or any other DynamoDB-API server.
"""

from __future__ import annotations

import uuid

import pytest

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.dynamodb_store import DynamoDbStore
from chalicelib.errors import ConditionFailed


def test_conditional_put_conflict_over_http(moto_endpoint: str) -> None:
    clock = ManualClock()
    store = DynamoDbStore(f"bocage-http-{uuid.uuid4().hex[:8]}", clock, endpoint_url=moto_endpoint)
    store.ensure_table()
    store.ensure_table()  # a second start finds the table and TTL already there

    store.put(
        {"pk": "INVITE#h", "sk": "META", "who": "first", "expires_at": clock.now() + 60}, if_absent=True
    )
    with pytest.raises(ConditionFailed):
        store.put({"pk": "INVITE#h", "sk": "META", "who": "second"}, if_absent=True)
    assert store.get("INVITE#h", "META") == {
        "pk": "INVITE#h",
        "sk": "META",
        "who": "first",
        "expires_at": clock.now() + 60,
    }

    clock.advance(60)  # expired, though the server still holds it: the slot is free again
    store.put({"pk": "INVITE#h", "sk": "META", "who": "second"}, if_absent=True)
    assert store.query("INVITE#h").items == [{"pk": "INVITE#h", "sk": "META", "who": "second"}]

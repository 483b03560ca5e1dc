"""The Store on DynamoDB, or any server speaking its API (ScyllaDB Alternator, DynamoDB Local).

Only the portable subset is used: single-item conditional writes, Query, UpdateItem ADD,
BatchWriteItem by 25; no transactions, no PartiQL. DynamoDB deletes expired items
lazily, so every read and condition also compares ``expires_at`` with the clock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, SupportsBytes, cast

import boto3
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.adapters.store_items import (
    EXPIRES_AT,
    KeyRange,
    batch_ops,
    check_conditions,
    check_increment,
    check_item,
    check_key,
    is_live,
    make_page,
    parse_query,
)
from chalicelib.errors import BocageError, ConditionFailed, ItemTooLarge
from chalicelib.ports import MAX_ITEM_BYTES, Clock, Item, Page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_SIZE = 25  # BatchWriteItem's limit, on DynamoDB and Alternator alike
_BATCH_ATTEMPTS = 8
_INCREMENT_ATTEMPTS = 5

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """Turn the deserializer's Decimals back into the ints that were written, and its Binary
    wrappers back into the bytes."""
    if isinstance(value, Binary):
        return bytes(cast("SupportsBytes", value))  # the stubs omit Binary.__bytes__
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _to_attrs(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _from_attrs(attrs: Mapping[str, Any]) -> Item:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in attrs.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _number(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _sort_key_condition(key_range: KeyRange) -> tuple[str, dict[str, Any]]:
    """The sort-key part of a KeyConditionExpression (" AND ..." or "") and the values it names."""
    if key_range.prefix is not None:
        return " AND begins_with(#sk, :prefix)", {":prefix": {"S": key_range.prefix}}
    start, end = key_range.start, key_range.end
    if start is not None and end is not None:
        return " AND #sk BETWEEN :start AND :end", {":start": {"S": start}, ":end": {"S": end}}
    if start is not None:
        return " AND #sk >= :start", {":start": {"S": start}}
    if end is not None:
        return " AND #sk <= :end", {":end": {"S": end}}
    return "", {}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


class DynamoDbStore:
    """A ``Store`` on one DynamoDB table with string keys ``pk`` (hash) and ``sk`` (range)."""

    def __init__(
        self,
        table_name: str,
        clock: Clock,
        *,
        client: DynamoDBClient | None = None,
        endpoint_url: str | None = None,
        region: str = "eu-west-3",
        consistent_reads: bool = True,
    ) -> None:
        self._table = table_name
        self._clock = clock
        # Strong reads by default: the same read-your-writes behaviour as SQLite, at 1 RCU per 4 KB.
        self._consistent = consistent_reads
        self._client: DynamoDBClient = client or boto3.client(
            "dynamodb",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )

    # -- errors ------------------------------------------------------------------------

    def _raise(self, error: ClientError, pk: str, sk: str) -> NoReturn:
        """Translate the DynamoDB errors a caller can act on; re-raise the rest."""
        code, message = _error_code(error), _error_message(error)
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(f"{pk}/{sk}: condition not met") from None
        if code == "ValidationException" and "item size" in message.lower():
            # Our estimate and the server's count can differ slightly: same answer either way.
            raise ItemTooLarge(f"item {pk}/{sk} is over the {MAX_ITEM_BYTES}-byte limit") from error
        raise error

    # -- table -------------------------------------------------------------------------

    def ensure_table(self) -> None:
        """Create the table if missing (on-demand), wait until active, enable TTL on expires_at."""
        try:
            self._client.describe_table(TableName=self._table)
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise
            try:
                self._client.create_table(
                    TableName=self._table,
                    KeySchema=[
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    AttributeDefinitions=[
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as create_error:
                if _error_code(create_error) != "ResourceInUseException":  # created meanwhile
                    raise
        self._client.get_waiter("table_exists").wait(
            TableName=self._table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        try:
            self._client.update_time_to_live(
                TableName=self._table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES_AT},
            )
        except ClientError as error:
            # DynamoDB refuses to enable TTL twice; moto accepts it. Either way it is on.
            already = "already enabled" in _error_message(error)
            if not (_error_code(error) == "ValidationException" and already):
                raise

    # -- Store -------------------------------------------------------------------------

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        check_key(pk, sk)
        response = self._client.get_item(
            TableName=self._table, Key=_key(pk, sk), ConsistentRead=self._consistent and consistent
        )
        attrs = response.get("Item")
        if not attrs:
            return None
        item = _from_attrs(attrs)
        return item if is_live(item, self._clock.now()) else None

    def put(
        self,
        item: Item,
        *,
        if_absent: bool = False,
        if_match: Mapping[str, Any] | None = None,
    ) -> None:
        check_item(item)
        check_conditions(if_absent, if_match)
        request: dict[str, Any] = {"TableName": self._table, "Item": _to_attrs(item)}
        now = _number(self._clock.now())
        if if_absent:
            request["ConditionExpression"] = "attribute_not_exists(#pk) OR #exp <= :now"
            request["ExpressionAttributeNames"] = {"#pk": "pk", "#exp": EXPIRES_AT}
            request["ExpressionAttributeValues"] = {":now": now}
        elif if_match is not None:
            parts = ["attribute_exists(#pk)", "(attribute_not_exists(#exp) OR #exp > :now)"]
            names = {"#pk": "pk", "#exp": EXPIRES_AT}
            values = {":now": now}
            for i, (name, value) in enumerate(if_match.items()):
                names[f"#a{i}"] = name
                if value is None:
                    parts.append(f"attribute_not_exists(#a{i})")
                    continue
                parts.append(f"#a{i} = :v{i}")
                values[f":v{i}"] = dict(_serializer.serialize(value))
            request["ConditionExpression"] = " AND ".join(parts)
            request["ExpressionAttributeNames"] = names
            request["ExpressionAttributeValues"] = values
        try:
            self._client.put_item(**request)
        except ClientError as error:
            self._raise(error, item["pk"], item["sk"])

    def delete(self, pk: str, sk: str) -> None:
        check_key(pk, sk)
        self._client.delete_item(TableName=self._table, Key=_key(pk, sk))

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
        key_range, after = parse_query(prefix, start, end, limit, cursor)
        if not isinstance(pk, str) or not pk:
            raise ValueError("pk must be a non-empty string")
        if key_range.is_empty():  # DynamoDB rejects BETWEEN with bounds reversed
            return make_page([], limit)
        sk_condition, sk_values = _sort_key_condition(key_range)
        condition = "#pk = :pk" + sk_condition
        values: dict[str, Any] = {":pk": {"S": pk}, ":now": _number(self._clock.now()), **sk_values}
        names = {"#pk": "pk", "#exp": EXPIRES_AT}
        if sk_condition:
            names["#sk"] = "sk"  # DynamoDB rejects unused attribute names
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "FilterExpression": "attribute_not_exists(#exp) OR #exp > :now",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not descending,
            "ConsistentRead": self._consistent and consistent,
        }
        if after is not None:
            request["ExclusiveStartKey"] = _key(pk, after)
        # Limit counts items read before the expiry filter, so a page may come back short:
        # keep reading until limit + 1 live items (the extra one proves there is more).
        items: list[Item] = []
        while len(items) <= limit:
            request["Limit"] = limit + 1 - len(items)
            response = self._client.query(**request)
            items.extend(_from_attrs(attrs) for attrs in response.get("Items", []))
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                break
            request["ExclusiveStartKey"] = last_key
        return make_page(items, limit)

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
        return int(self._add(pk, sk, {attribute: amount, **(also or {})}, expires_at)[attribute])

    def increment_item(self, pk: str, sk: str, name: str, *, also: Mapping[str, int] | None = None) -> Item:
        return self._add(pk, sk, {name: 1, **(also or {})}, None)

    def _add(self, pk: str, sk: str, amounts: dict[str, int], expires_at: int | None) -> Item:
        """ADD on a live item; an expired item counts as absent, so the count restarts. The
        item comes back whole with the write (``ALL_NEW``: no read unit, the write's own)."""
        for name, value in amounts.items():
            check_increment(pk, sk, name, value, expires_at)
        names = {f"#c{i}": name for i, name in enumerate(amounts)} | {"#exp": EXPIRES_AT}
        adds = ", ".join(f"#c{i} :a{i}" for i in range(len(amounts)))
        update = f"ADD {adds}" if expires_at is None else f"ADD {adds} SET #exp = :exp"
        for _ in range(_INCREMENT_ATTEMPTS):
            now = _number(self._clock.now())
            values: dict[str, Any] = {f":a{i}": _number(v) for i, v in enumerate(amounts.values())}
            values[":now"] = now
            if expires_at is not None:
                values[":exp"] = _number(expires_at)
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key=_key(pk, sk),
                    UpdateExpression=update,
                    ConditionExpression="attribute_not_exists(#exp) OR #exp > :now",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
                return _from_attrs(response["Attributes"])
            except ClientError as error:
                code = _error_code(error)
                if code == "ValidationException" and "data type" in _error_message(error):
                    raise ValueError(f"{pk}/{sk} {', '.join(amounts)}: not all integers") from None
                if code != "ConditionalCheckFailedException":
                    raise
            # Expired but not yet deleted: replace it with a fresh counter, unless another
            # writer replaced or removed it first, in which case add to theirs.
            fresh: Item = {"pk": pk, "sk": sk, **amounts}
            if expires_at is not None:
                fresh[EXPIRES_AT] = expires_at
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=_to_attrs(fresh),
                    ConditionExpression="#exp <= :now",
                    ExpressionAttributeNames={"#exp": EXPIRES_AT},
                    ExpressionAttributeValues={":now": now},
                )
                return fresh
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
        raise ConditionFailed(f"{pk}/{sk}: counter kept changing, try again")

    def batch_write(self, puts: Iterable[Item] = (), deletes: Iterable[tuple[str, str]] = ()) -> None:
        """Chunks of 25; unprocessed items (throttling) are retried with jittered backoff."""
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": _to_attrs(item)}}
            if item is not None
            else {"DeleteRequest": {"Key": _key(pk, sk)}}
            for pk, sk, item in batch_ops(puts, deletes)
        ]
        for offset in range(0, len(requests), BATCH_SIZE):
            pending: dict[str, Any] = {self._table: requests[offset : offset + BATCH_SIZE]}
            for attempt in range(_BATCH_ATTEMPTS):
                if attempt:
                    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
                response = self._client.batch_write_item(RequestItems=pending)
                pending = dict(response.get("UnprocessedItems") or {})
                if not pending.get(self._table):
                    break
            else:
                left = len(pending[self._table])
                raise BocageError(f"batch write: {left} items still unprocessed after retries")

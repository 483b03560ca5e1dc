"""AWS cost per user-month at a given load, measured on the real app (issue 18, item 1).

What runs: the Chalice app (``app.py``, through ``chalice.test.Client``) on in-process moto
(``mock_aws``) with the real adapters: ``DynamoDbStore``, ``SqsQueue``, ``ApiGatewayPush``
posting to moto's ``@connections`` API, and ``SesMailer``. Every AWS call those adapters make
goes through a boto3 client this bench watches (``before-parameter-build``, ``before-call`` and
``after-call`` events), so each call is counted by service and operation and charged to the
activity being driven: a send, a push, a ping, a catch-up read, a channel list, a connect or a
disconnect.

What is measured per call: DynamoDB capacity units from the real item sizes (an item's billable
size by DynamoDB's rules, read back from the table before and after each write; reads from the
items returned, which in this slice are all the items a query reads since nothing expires; a
read unit per 4 KB when ``ConsistentRead`` is set, half a unit otherwise, exactly as the adapter
asks today), WebSocket messages (32 KB units) and bytes of every ``PostToConnection``, SQS
requests (64 KB units), the bytes of the app's structured log lines (the Powertools handler's
stream is swapped for a counter), and the bytes of the items a send creates (storage).

What is modelled: Lambda duration is the handler's measured in-process CPU time (moto cannot
time AWS: its in-process calls stand for the network round trips), split into the time spent in
AWS calls and posts (waiting: ``Tally.wait_ms``) and the rest (the handler's own CPU, taken as one
vCPU's), billed per millisecond at each function's memory (.chalice/config.json's prod stage, or
``--lambda-mb`` for all): Lambda's CPU share is proportional to memory, one vCPU at 1,769 MB, so
the own CPU stretches by 1769 / MB below that and the waits do not (``duration_ms``; the table
"right-sizing" compares 256, 512 and 1,024 MB per function). The time of ``PostToConnection``
calls during a send is moved from the send to
the pushes, so "pushes" carries the fan-out, whose posts run ``PARALLEL_PUSHES`` at a time
(``chalicelib/adapters/apigw_push.py``): each post's time is divided by the concurrency a send to
the channel reaches (each call timed on its own thread). Cold starts are not in the bill
(bench/import_time.py models their time at each size). Lambda's
own START/END/REPORT lines are a constant per invocation. Connection minutes are the online
hours. Storage is the steady state: a user's messages of ``--retention-days`` days, each with the
items its send created, plus 100 bytes of DynamoDB overhead per item; point-in-time recovery is
billed on the same size.

How the slice scales to a user-month: one organisation with one group channel of
``--channel-size`` members (by default receives / sends + 1, so that every member receives what
the others send), each member online with ``--devices`` connections (rounded; a second device
is a second connection of the same device: fan-out is per connection). Every connection
connects (``GET /health``, then ``$connect``) and lists its channels; the members take turns to
send ``--slice-messages`` messages of ``--message-bytes`` over their open WebSocket (the ``send``
action, answered by an ``ack`` pushed to that connection, as both clients do by default;
``--rest-share`` of them over REST, as a client without a socket does), each pushed to every
connection of the channel but the sending device's (it has the message); one member catches up
from the start in one page; every connection pings once (the web client's ``{"action": "ping"}``,
which the template routes to a mock integration: one inbound message, no
function, no answer) and disconnects. Each activity's cost per occurrence (per send, per push,
per message read, per ping, ...) is then multiplied by its occurrences per user-month:

- sends: ``sends`` a day;
- pushes: ``receives x devices x live-share`` plus the sender's other devices ``sends x (devices - 1) x
  live-share`` (never the sending device: it has the message). A channel past the inline limit
  fans out through SQS, which the slice drains through the app's ``fanout`` handler after each
  send; there a connection's frames of one consumer batch share a WebSocket message, so that
  path's messages and post time are cut by ``Load.coalesced_share()`` (frames that follow the
  previous one within ``--burst-window-s``: by chance at the load's own rate, or by
  ``--burst-share``). Inline fan-outs push one frame per connection per send: no saving;
- pings: one per ``PING_EVERY`` of ``web/js/messenger.js`` (read from the file) without a send
  of the device's own over the socket, per online device (``pings_a_day``);
- catch-up reads: every message of the channel (received and own) read once per device, in
  pages of ``--catch-up-page`` (the web client's ``READ_LIMIT``), plus one channel list per connect;
- connects and disconnects: ``--connects-per-day`` per device (default: one per two hours
  online, API Gateway's connection limit).

    python bench/cost.py                    # the issue's reference load
    python bench/cost.py --preset docs      # docs/deploy-aws.md's 1,000 users at 20 messages a day
    python bench/cost.py --sends 20 --receives 200 --online-hours 4 --json

The floor (``floor``): what the load itself costs at the carrier's list prices whatever the
code does: a WebSocket message per live push (less those that could share one), a connection
minute per online minute, an inbound message per send and the messages' own bytes stored. The
what-ifs (``WHAT_IFS``) reprice the same measurement under a lighter load (fewer pushes live,
fewer hours connected; ``--live-share`` and ``--online-hours`` set any other) and without API
Gateway's per-message and per-minute meters.

Prices come from ``infra/aws/prices.json`` (``--region``); no free tier is applied. Energy and
CO2e come from ``chalicelib/footprint.json`` through ``chalicelib/footprint.py``, the model the
impact page reads: by line, the bytes the server sent over the network, the Lambda GB-seconds and
the GB-months stored (``PHYSICAL``); per unit, a send, a push, a GB-month and a call minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from moto import mock_aws

from bocage.client.crypto import new_message_id
from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib import wiring
from chalicelib.adapters.apigw_push import PARALLEL_PUSHES, ApiGatewayPush
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.dynamodb_store import DynamoDbStore
from chalicelib.adapters.records import keys
from chalicelib.adapters.ses_mailer import SesMailer
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.footprint import GB, Footprint, model
from chalicelib.request_logging import logger as app_logger
from chalicelib.services.delivery import INLINE_LIMIT
from chalicelib.settings import Settings
from tests.support import People, Reply, SignedApi, ws_event

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "infra" / "aws" / "prices.json"
WEB_MESSENGER = ROOT / "web" / "js" / "messenger.js"
DAYS = 30  # a user-month
GIB = 2**30  # AWS bills storage and transfer in GiB, which its pages call GB
WS_UNIT = 32 * 1024  # API Gateway bills WebSocket messages in 32 KB increments
SQS_UNIT = 64 * 1024  # SQS bills each 64 KB chunk of a request as one request
READ_UNIT = 4 * 1024
WRITE_UNIT = 1024
ITEM_OVERHEAD = 100  # bytes DynamoDB adds to every item when it bills storage
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs bills per event on top of its message
PLATFORM_LOG_BYTES = 330  # Lambda's own START, END and REPORT lines per invocation, typical lengths
PLATFORM_LOG_EVENTS = 3
TABLE = "bocage-cost"
KEY_NAMES = ("pk", "sk")
PUSH_ENDPOINT = "https://cost0bench.execute-api.{region}.amazonaws.com/api"
FILLER = "Réunion du conseil jeudi à 18 h 30, salle des fêtes : voirie, cantine, éclairage. "


# -- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What a user does, per day, and how the deployment is sized."""

    sends: float = 50
    receives: float = 500
    online_hours: float = 8
    devices: float = 1
    channel_size: int = 0  # 0: receives / sends + 1
    retention_days: int = 90
    message_bytes: int = 955  # of text: sealed with its labels ({"kind": ..., "content": ...}), 1 KiB padded
    region: str = "eu-west-3"
    live_share: float = 1.0  # of received messages, the share pushed live (recipient online)
    connects_per_day: float = 0  # per device; 0: one per two hours online
    catch_up_page: int = 200  # messages per catch-up read: the web client's READ_LIMIT
    lambda_mb: int = 0  # every function's memory; 0: each function's, from .chalice/config.json's prod stage
    rest_share: float = 0.0  # of sends, the share over REST (clients without an open socket)
    # Coalescing (docs/protocol.md 9): the fan-out queue's consumer joins a connection's frames of
    # one batch into one WebSocket message. ``burst_share``: of the messages a connection receives,
    # the share that follows the previous one within ``burst_window_s`` beyond what independent
    # arrivals at this load give (that chance is always counted; 0: conversations do not cluster).
    burst_share: float = 0.0
    burst_window_s: float = 1.0  # SQS to consumer: the chunks of one burst land in one batch
    users: int = 1  # only for the monthly total of an organisation

    def members(self) -> int:
        return self.channel_size or round(self.receives / self.sends) + 1

    def connects(self) -> float:
        return self.connects_per_day or max(1, math.ceil(self.online_hours / 2))

    def connections_per_member(self) -> int:
        return max(1, round(self.devices))

    def queued(self) -> bool:
        """A send's fan-out takes the queue path (more connections than the inline limit)."""
        return (self.members() - 1) * self.connections_per_member() > INLINE_LIMIT  # not the sender's

    def coalesced_share(self) -> float:
        """Of a connection's pushes, the share that rides in an earlier frame's WebSocket message:
        none inline (one frame per connection per send); on the queue path, a frame that follows
        the previous one within the window, by chance (Poisson arrivals at the load's own rate
        while online) or by ``burst_share``."""
        return self.follow_share() if self.queued() else 0.0

    def follow_share(self) -> float:
        """Of a connection's frames, the share that follows the previous one within the window."""
        rate = self.receives * self.live_share / (self.online_hours * 3600)  # frames a second
        chance = 1 - math.exp(-rate * self.burst_window_s)
        return self.burst_share + (1 - self.burst_share) * chance


PRESETS = {
    # issue 18: 50 sent and 500 received a day, 8 h online, 90-day retention, ~1 KiB, one device
    "reference": Load(),
    # docs/deploy-aws.md: 1,000 users with 1.5 devices, 20 messages a day each reaching 25 devices
    # (about 16 other members), 40 % of them online, 6 connects a device a day
    "docs": Load(
        sends=20, receives=320, devices=1.5, channel_size=17, live_share=0.4, connects_per_day=6, users=1000
    ),
}


CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
STAGE = "prod"
SIZES = (256, 512, 1024)  # the memory sizes the right-sizing table compares
#: The Lambda function (Chalice's name, as in .chalice/config.json's ``lambda_functions``) that
#: runs each activity; a push runs in the send's function inline, in ``fanout`` on the queue path.
FUNCTIONS = {
    "send": "websocket_message",
    "send_rest": "api_handler",
    "read": "api_handler",
    "channel_list": "api_handler",
    "connect": "websocket_connect",
    "disconnect": "websocket_disconnect",
    "push": "websocket_message",
}


def configured_mb(function: str, stage: str = STAGE) -> int:
    """A function's memory as Chalice resolves it: the stage's per-function setting, the stage's,
    the top level's per-function, the top level's; Lambda's 128 MB if none."""
    config = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
    staged = config["stages"][stage]
    scopes = (
        staged.get("lambda_functions", {}).get(function, {}),
        staged,
        config.get("lambda_functions", {}).get(function, {}),
        config,
    )
    return next((int(scope["lambda_memory_size"]) for scope in scopes if "lambda_memory_size" in scope), 128)


def function_of(activity: str, load: Load) -> str:
    return "fanout" if activity == "push" and load.queued() else FUNCTIONS[activity]


def memory_mb(activity: str, load: Load) -> int:
    return load.lambda_mb or configured_mb(function_of(activity, load))


def duration_ms(tally: Tally, mb: int) -> float:
    """A tally's billed milliseconds at ``mb`` MB. Lambda gives a function CPU in proportion to its
    memory, one vCPU at 1,769 MB (chalicelib/footprint.json's ``lambda_mb_per_vcpu``), and a
    single-threaded handler gains nothing past one: the measured CPU time (taken as one vCPU's)
    stretches by 1769 / mb below it; the time spent waiting on AWS (``wait_ms``) does not."""
    vcpu_mb = model().value("lambda_mb_per_vcpu")
    cpu_ms = max(0.0, tally.lambda_ms - tally.wait_ms)
    return cpu_ms * vcpu_mb / min(mb, vcpu_mb) + tally.wait_ms


def lambda_gb_seconds(tally: Tally, load: Load, activity: str) -> float:
    """Per occurrence; a send blends its two functions by ``rest_share``."""
    if not tally.lambda_ms:  # no function ran (a ping, answered by API Gateway)
        return 0.0
    n = max(1, tally.occurrences)
    shares = [(memory_mb(activity, load), 1.0)]
    if activity == "send" and load.rest_share and not load.lambda_mb:
        rest = configured_mb(FUNCTIONS["send_rest"])
        shares = [(shares[0][0], 1 - load.rest_share), (rest, load.rest_share)]
    return sum(share * duration_ms(tally, mb) / 1000 * mb / 1024 for mb, share in shares) / n


def ping_interval_seconds() -> float:
    """The web client's keepalive period, read from its source so the model follows it."""
    match = re.search(r"const PING_EVERY = ([\d_]+);", WEB_MESSENGER.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"cost bench: no PING_EVERY in {WEB_MESSENGER}")
    return int(match.group(1).replace("_", "")) / 1000


# -- DynamoDB's billable sizes ----------------------------------------------------------------


def number_bytes(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one."""
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


_SCALAR_BYTES: dict[str, Any] = {
    "S": lambda value: len(value.encode("utf-8")),
    "N": number_bytes,
    "B": len,
    "BOOL": lambda value: 1,
    "NULL": lambda value: 1,
}


def attribute_bytes(value: Mapping[str, Any]) -> int:
    """The size of one typed attribute value (``{"S": ...}``) as DynamoDB bills it."""
    ((kind, inner),) = value.items()
    if kind in _SCALAR_BYTES:
        return int(_SCALAR_BYTES[kind](inner))
    if kind == "L":
        return 3 + sum(1 + attribute_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + attribute_bytes(v) for name, v in inner.items())
    return sum(int(_SCALAR_BYTES[kind[0]](element)) for element in inner)  # SS, NS, BS


def item_bytes(attrs: Mapping[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_bytes(value) for name, value in attrs.items())


def read_units(operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> float:
    """GetItem or Query: 4 KB units of what was read, at least one; half for eventual consistency."""
    items = parsed.get("Items", []) if operation == "Query" else [parsed["Item"]] if "Item" in parsed else []
    units = max(1, math.ceil(sum(item_bytes(item) for item in items) / READ_UNIT))
    return units if params.get("ConsistentRead") else units / 2


def written_keys(operation: str, params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key) of every item a write request touches."""
    if operation == "PutItem":
        return [(params["TableName"], {k: params["Item"][k] for k in KEY_NAMES})]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], dict(params["Key"]))]
    touched = []
    for table, requests in params.get("RequestItems", {}).items():  # BatchWriteItem
        for request in requests:
            if "PutRequest" in request:
                touched.append((table, {k: request["PutRequest"]["Item"][k] for k in KEY_NAMES}))
            else:
                touched.append((table, dict(request["DeleteRequest"]["Key"])))
    return touched


DYNAMODB_READS = ("GetItem", "Query")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")


# -- the meter ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one activity cost in the slice, summed over its occurrences."""

    occurrences: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    ws_messages: int = 0
    bytes_out: int = 0  # WebSocket frames pushed and REST responses
    rest_requests: int = 0
    invocations: int = 0
    lambda_ms: float = 0.0
    wait_ms: float = (
        0.0  # of lambda_ms, waiting on AWS (the function's calls and posts): memory does not speed it
    )
    log_bytes: int = 0
    log_events: int = 0
    sqs_requests: int = 0


@dataclass
class Call:
    """One AWS call in flight: who pays for it, its API parameters, the items' sizes before it."""

    activity: str
    params: Mapping[str, Any]
    before: list[tuple[str, dict[str, Any], int]]
    started: float = 0.0


Client = TypeVar("Client")


class AwsMeter:
    """Charges every call of the watched boto3 clients to the activity being driven (none: free).

    Pushes made during a send are charged to "push", with the time they took, so the send's
    Lambda time is its own work and the fan-out shows as a line of its own.
    """

    def __init__(self, peek: Any) -> None:
        self.tallies: defaultdict[str, Tally] = defaultdict(Tally)
        self.activity: str | None = None
        self._peek = peek  # an unwatched DynamoDB client: reads item sizes around writes
        self._push_seconds = 0.0
        self._peek_seconds = 0.0  # the meter's own reads, not the function's time
        self._aws_seconds = 0.0  # the function's own AWS calls (pushes apart): round trips on Lambda
        self.push_concurrency = 1  # posts of one fan-out in flight at once
        self.sending_connection: str | None = None  # a send over it: its ack is the send's, not a push

    def watch(self, client: Client) -> Client:
        events = client.meta.events  # type: ignore[attr-defined]
        events.register("before-parameter-build", self._inspect)
        events.register("before-call", self._count)
        events.register("after-call", self._settle)
        return client

    @contextmanager
    def charging(self, activity: str) -> Iterator[Tally]:
        previous, self.activity = self.activity, activity
        try:
            yield self.tallies[activity]
        finally:
            self.activity = previous

    @contextmanager
    def invocation(
        self, activity: str, *, rest: bool = False, frame_in: str | None = None
    ) -> Iterator[Tally]:
        """One Lambda invocation: its billed milliseconds (pushes excepted), its REST request or frame."""
        with self.charging(activity) as tally:
            pushed, peeked, waited = self._push_seconds, self._peek_seconds, self._aws_seconds
            started = time.process_time()
            yield tally
            elapsed = time.process_time() - started
            own = elapsed - (self._push_seconds - pushed) - (self._peek_seconds - peeked)
        tally.invocations += 1
        tally.lambda_ms += math.ceil(own * 1000)
        tally.wait_ms += min(own, self._aws_seconds - waited) * 1000
        tally.rest_requests += int(rest)
        if frame_in is not None:
            tally.ws_messages += math.ceil(len(frame_in.encode("utf-8")) / WS_UNIT)

    def occurred(self, activity: str, times: int = 1) -> None:
        self.tallies[activity].occurrences += times

    def log_line(self, text: str) -> None:
        if self.activity is not None:
            tally = self.tallies[self.activity]
            tally.log_bytes += len(text.encode("utf-8"))
            tally.log_events += text.count("\n")

    # -- boto3 event handlers -------------------------------------------------------------

    def _inspect(self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.activity is None:
            return
        activity = self.activity
        if activity == "send" and model.name == "PostToConnection":
            activity = "send" if params.get("ConnectionId") == self.sending_connection else "push"
        before = []
        if model.name in DYNAMODB_WRITES:
            before = [(table, key, self._size(table, key)) for table, key in written_keys(model.name, params)]
        context["cost_call"] = Call(activity, params, before)

    def _count(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("cost_call")
        if call is not None:
            call.started = time.thread_time()  # pushes run on a pool: each call on its own thread
            self.tallies[call.activity].calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _settle(self, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("cost_call")
        if call is None:
            return
        span = time.thread_time() - call.started
        tally, service = self.tallies[call.activity], model.service_model.service_name
        if service == "apigatewaymanagementapi" and model.name == "PostToConnection":
            self._pushed(tally, call, span)
        else:
            self._aws_seconds += span
        if service == "dynamodb":
            self._dynamodb(tally, model.name, call, parsed)
        elif service == "sqs":
            payload = sum(
                len(e.get("MessageBody", "").encode("utf-8")) for e in call.params.get("Entries", [])
            )
            tally.sqs_requests += max(1, math.ceil(payload / SQS_UNIT))

    def _dynamodb(self, tally: Tally, operation: str, call: Call, parsed: Mapping[str, Any]) -> None:
        if operation in DYNAMODB_READS:
            tally.read_units += read_units(operation, call.params, parsed)
            return
        for table, key, before in call.before:
            after = self._size(table, key)
            tally.write_units += max(1, math.ceil(max(before, after) / WRITE_UNIT))

    def _pushed(self, tally: Tally, call: Call, seconds: float) -> None:
        size = len(call.params["Data"])
        tally.ws_messages += max(1, math.ceil(size / WS_UNIT))
        tally.bytes_out += size
        if call.activity != "push":  # the sender's ack: the send waits for it
            self._aws_seconds += seconds
        else:
            tally.occurrences += 1
            waited = seconds * 1000 / self.push_concurrency  # the function waits for the slowest
            tally.lambda_ms += waited
            tally.wait_ms += waited
            self._push_seconds += seconds

    def _size(self, table: str, key: dict[str, Any]) -> int:
        started = time.process_time()
        item = self._peek.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        self._peek_seconds += time.process_time() - started
        return item_bytes(item) if item else 0

    def stored_bytes(self, table: str, channel_id: str) -> int:
        """What a channel's messages occupy: each message item and its id marker, with the overhead."""
        kinds, total = (keys.MESSAGE_PREFIX, keys.MARKER_PREFIX), 0
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{keys.CHANNEL_PREFIX}{channel_id}"}},
        }
        while True:
            page = self._peek.query(**request)
            total += sum(
                item_bytes(i) + ITEM_OVERHEAD for i in page["Items"] if i["sk"]["S"].startswith(kinds)
            )
            if "LastEvaluatedKey" not in page:
                return total
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class LogBytes(io.TextIOBase):
    """Stands in for the app logger's stdout: each structured line is counted, not printed."""

    def __init__(self, meter: AwsMeter) -> None:
        self._meter = meter

    def write(self, text: str) -> int:
        self._meter.log_line(text)
        return len(text)


@contextmanager
def counting_logs(meter: AwsMeter) -> Iterator[None]:
    handler = app_logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        raise SystemExit("cost bench: the app logger does not write to a stream")
    level = app_logger.log_level
    app_logger.setLevel("INFO")  # the deployed functions' level (no POWERTOOLS_LOG_LEVEL set)
    previous = handler.setStream(LogBytes(meter))
    try:
        yield
    finally:
        handler.setStream(previous)
        app_logger.setLevel(level)


# -- the deployment and the slice ---------------------------------------------------------------


@dataclass
class Member:
    keys: DeviceKeys
    messenger: Any  # bocage.client.messenger.Messenger


@dataclass
class FanoutQueue:
    """The fan-out queue as Lambda's SQS poller reads it: batches of up to ten, each handed to
    the app's ``fanout`` handler as one invocation (its receive and delete are SQS requests)."""

    sqs: Any
    url: str

    def drain(self, meter: AwsMeter, invoke: Any) -> int:
        """Consume what a send queued, charged to the pushes; returns the batches handled."""
        from chalice.test import TestEventsClient

        from app import app

        # Uncharged (no activity): the poller's empty receives are a cost of the queue, not of a user.
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        if attributes["Attributes"]["ApproximateNumberOfMessages"] == "0":
            return 0
        batches = 0
        with meter.charging("push"):
            while got := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages"):
                event = TestEventsClient(app).generate_sqs_event([m["Body"] for m in got])
                with meter.invocation("push"):
                    invoke("fanout", event)
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
                self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
                batches += 1
        return batches


def new_vapid_key() -> str:
    """A fresh VAPID key (``cryptography`` imported only by a bench that pushes)."""
    from chalicelib.adapters.web_push_crypto import VapidKey

    return VapidKey.generate().private_text()


def assemble(
    region: str, operator: OperatorKey, *, web_push: bool = False
) -> tuple[AwsMeter, wiring.Container, FanoutQueue]:
    """The app's container over moto: real DynamoDB, SQS, API Gateway push and SES adapters, watched."""
    meter_session = boto3.session.Session(region_name=region)
    clock = ManualClock()  # still: nothing expires during the slice, so reads see what they scan
    meter = AwsMeter(meter_session.client("dynamodb"))
    store = DynamoDbStore(TABLE, clock, client=meter.watch(meter_session.client("dynamodb")))
    store.ensure_table()
    sqs = meter.watch(meter_session.client("sqs"))
    queue_url = sqs.create_queue(QueueName="bocage-cost-fanout")["QueueUrl"]
    ses = meter.watch(meter_session.client("ses"))
    ses.verify_domain_identity(Domain="bocage.localhost")
    push = meter.watch(
        meter_session.client("apigatewaymanagementapi", endpoint_url=PUSH_ENDPOINT.format(region=region))
    )
    settings = Settings(
        store="dynamodb",
        table=TABLE,
        region=region,
        public_url="https://bench.invalid",
        operator_keys=(operator.public_key,),
        fanout_queue_url=queue_url,
        vapid_private_key=new_vapid_key() if web_push else None,
    )
    container = wiring.build(
        settings,
        store=store,
        clock=clock,
        mailer=SesMailer(settings.mail_from, ses),
        push=ApiGatewayPush(push),
        queue=SqsQueue(sqs, queue_url),
    )
    return meter, container, FanoutQueue(sqs, queue_url)


class Deployment:
    """The app on moto, metered, with one channel of members to drive through REST and WebSocket."""

    def __init__(
        self, api: SignedApi, meter: AwsMeter, operator: OperatorKey, profiles: Path, fanout: FanoutQueue
    ) -> None:
        self.api = api
        self.meter = meter
        self.fanout = fanout
        self.operator = operator
        self.profiles = profiles
        self.channel_id = ""
        self.members: list[Member] = []

    def open_channel(self, size: int) -> list[Member]:
        """An organisation and a group of ``size`` members, each with its sender key out (not charged)."""
        created = self.api.create_org(self.operator)
        owner_keys, reply = self.api.activate(created["activation_code"], "Maire")
        people = People(self.api, (owner_keys, dict(reply.body)), self.profiles)
        messengers = [people.owner] + [people.join(f"agent{i}") for i in range(1, size)]
        self.channel_id = people.owner.create_channel("group", "Conseil")["channel_id"]
        for name in list(people.info)[1:]:
            people.owner.add_member(self.channel_id, people.info[name]["member_id"])
        for m in messengers:
            m.distribute_key(self.channel_id)
        self.members = [Member(m.keys, m) for m in messengers]
        return self.members

    def connect(self, member: Member, connection_id: str) -> None:
        with self.meter.invocation("connect", rest=True) as tally:
            self._rest(tally, self.api.call("GET", "/health"), 200)
        with self.meter.invocation("connect"):
            answer = self.api.ws_connect(member.keys, connection_id)
        _require(answer["statusCode"] == 200, f"$connect answered {answer}")
        self.meter.occurred("connect")

    def list_channels(self, member: Member) -> None:
        with self.meter.invocation("channel_list", rest=True) as tally:
            self._rest(tally, self.api.call("GET", "/channels", signer=member.keys), 200)
        self.meter.occurred("channel_list")

    def send(
        self,
        member: Member,
        message_bytes: int,
        connection_id: str | None = None,
        *,
        notify: list[str] | None = None,
        activity: str = "send",
        fan_out: bool = True,
    ) -> None:
        """Over REST, or with ``connection_id`` over that open WebSocket as both clients do by
        default: the ``send`` action in, its ``ack`` pushed back to that connection only.
        ``notify``: the members in "mentions only" mode the send names (WebSocket only).
        ``fan_out``: then consume what it queued (False: a burst's chunks wait to share a batch)."""
        envelope = self.envelope(member, message_bytes)
        if connection_id is None:
            path = f"/channels/{self.channel_id}/messages"
            with self.meter.invocation("send", rest=True) as tally:
                self._rest(tally, self.api.call("POST", path, envelope, signer=member.keys), 201)
        else:
            action = {"action": "send", "ref": envelope["message_id"], "envelope": envelope}
            if notify:
                action["notify"] = notify
            frame = json.dumps(action, separators=(",", ":"))
            self.meter.sending_connection = connection_id
            try:
                with self.meter.invocation(activity, frame_in=frame):
                    answer = self.api.ws("ws_message", ws_event("$default", connection_id, body=frame))
            finally:
                self.meter.sending_connection = None
            _require(answer.get("statusCode") == 200, f"the send frame was answered {answer}")
        self.meter.occurred(activity)
        if fan_out:
            self.fanout.drain(self.meter, self.api.lambda_.invoke)  # a large channel's chunks, if any

    def catch_up(self, member: Member, limit: int) -> int:
        """One catch-up page from the start; each message read is one occurrence."""
        path, query = f"/channels/{self.channel_id}/messages", {"since": "0", "limit": str(limit)}
        with self.meter.invocation("read", rest=True) as tally:
            reply = self._rest(tally, self.api.call("GET", path, signer=member.keys, query=query), 200)
        read = len(reply.body["messages"])
        self.meter.occurred("read", read)
        return read

    def ping(self, connection_id: str) -> None:
        """API Gateway answers it (the ``ping`` route's mock integration, infra/aws/resources.json):
        the app never sees it, so only the inbound message is billed."""
        frame = json.dumps({"action": "ping"}, separators=(",", ":"))  # what the web client sends
        del connection_id  # every connection's ping costs the same
        self.meter.tallies["ping"].ws_messages += math.ceil(len(frame.encode("utf-8")) / WS_UNIT)
        self.meter.occurred("ping")

    def disconnect(self, connection_id: str) -> None:
        with self.meter.invocation("disconnect"):
            self.api.ws("ws_disconnect", ws_event("$disconnect", connection_id))
        self.meter.occurred("disconnect")

    def envelope(self, member: Member, message_bytes: int) -> dict[str, Any]:
        """A text message of ``message_bytes`` sealed by the member's device, as the client sends it."""
        content = {"type": "text", "text": text_of(message_bytes)}
        sealed = member.messenger.seal(self.channel_id, new_message_id(), content, "message", None)
        return dict(sealed.model_dump(mode="json"))

    @staticmethod
    def _rest(tally: Tally, reply: Reply, status: int) -> Reply:
        _require(reply.status == status, f"the API answered {reply.status}: {reply.body}")
        tally.bytes_out += len(json.dumps(reply.body).encode("utf-8"))
        return reply


def text_of(size: int) -> str:
    """French text of exactly ``size`` UTF-8 bytes (spaces make up for a cut accent)."""
    text = (FILLER * (size // len(FILLER) + 1)).encode("utf-8")[:size].decode("utf-8", errors="ignore")
    return text + " " * (size - len(text.encode("utf-8")))


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise SystemExit(f"cost bench: {problem}")


@contextmanager
def deployed(region: str, *, web_push: bool = False) -> Iterator[Deployment]:
    """The metered app on in-process moto, for the length of the block; ``web_push``: with a
    VAPID key, so each new message asks whether a device is left to wake."""
    from chalice.test import Client

    from app import app

    operator = OperatorKey.generate()
    region_env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}  # Chalice's WebSocket API reads it
    with (
        mock.patch.dict(os.environ, region_env),
        mock_aws(),
        tempfile.TemporaryDirectory(prefix="bocage-cost-") as profiles,
    ):
        meter, container, fanout = assemble(region, operator, web_push=web_push)
        wiring.use(container)
        try:
            with counting_logs(meter), Client(app) as client:
                api = SignedApi(client.http, container.clock, client.lambda_)  # type: ignore[arg-type]
                yield Deployment(api, meter, operator, Path(profiles), fanout)
        finally:
            wiring.use(None)


@dataclass
class Measured:
    """What the slice cost, by activity, and what its messages occupy in the table."""

    tallies: dict[str, Tally]
    bytes_per_message: float


def run_slice(load: Load, messages: int) -> Measured:
    """Drive one channel through a day's kinds of activity; what each activity cost, in total."""
    with deployed(load.region) as deployment:
        members = deployment.open_channel(load.members())
        connections = [
            (member, f"conn-{m}-{d}")
            for m, member in enumerate(members)
            for d in range(load.connections_per_member())
        ]
        deployment.meter.push_concurrency = min(PARALLEL_PUSHES, len(connections))
        for member, connection_id in connections:
            deployment.connect(member, connection_id)
            deployment.list_channels(member)
        over_rest = round(messages * load.rest_share)
        for i in range(messages):
            m = i % len(members)
            deployment.send(members[m], load.message_bytes, None if i < over_rest else f"conn-{m}-0")
        deployment.catch_up(members[-1], min(load.catch_up_page, messages))
        for _, connection_id in connections:
            deployment.ping(connection_id)
        for _, connection_id in connections:
            deployment.disconnect(connection_id)
        stored = deployment.meter.stored_bytes(TABLE, deployment.channel_id)
        return Measured(dict(deployment.meter.tallies), stored / messages)


# -- from the slice to a user-month ------------------------------------------------------------

#: Each line of the bill and the activities it is made of (storage and connection minutes are modelled).
LINES: dict[str, tuple[str, ...]] = {
    "pushes": ("push",),
    "sends": ("send",),
    "pings": ("ping",),
    "catch-up reads": ("read", "channel_list"),
    "storage": (),
    "connection minutes": (),
    "connects": ("connect", "disconnect"),
}


#: What a coalesced frame does not cost: its own WebSocket message and its own post's time.
COALESCED_METERS = ("websocket_messages", "lambda_gb_seconds")


def occurrences_per_user_month(load: Load) -> dict[str, float]:
    d, live = load.devices, load.live_share
    connects = d * load.connects() * DAYS
    return {
        "send": load.sends * DAYS,
        "push": (load.receives * d * live + load.sends * (d - 1) * live) * DAYS,
        "ping": d * pings_a_day(load) * DAYS,
        "read": (load.receives + load.sends) * d * DAYS,
        "channel_list": connects,
        "connect": connects,
        "disconnect": connects,
    }


def pings_a_day(load: Load) -> float:
    """A device's keepalives a day. The web client pings only after ``PING_EVERY`` without a
    frame of its own (``lastFrame`` in web/js/messenger.js; a push it receives does not count, a
    send over the socket does). With its sends at random times (Poisson, rate r over the online
    hours), a quiet gap holds one ping per full ``PING_EVERY`` it lasts: e^(-r t) / (1 - e^(-r t))
    a gap on average, at r x online seconds gaps a day; with no sends, one ping per ``PING_EVERY``.
    Bursty sends leave longer gaps, so this may count too few; the check every minute pings up to
    a minute late, so it may count too many."""
    online, every = load.online_hours * 3600, ping_interval_seconds()
    rate = load.sends * (1 - load.rest_share) / load.devices / online if online else 0.0
    if rate * every < 1e-9:
        return online / every
    quiet = math.exp(-rate * every)
    return rate * online * quiet / (1 - quiet)


def meters_per_occurrence(tally: Tally, load: Load, activity: str) -> dict[str, float]:
    """The AWS meters one occurrence of an activity runs, on average over the slice."""
    n = max(1, tally.occurrences)
    log_bytes = (
        tally.log_bytes
        + tally.log_events * LOG_EVENT_OVERHEAD
        + tally.invocations * (PLATFORM_LOG_BYTES + PLATFORM_LOG_EVENTS * LOG_EVENT_OVERHEAD)
    )
    return {
        "websocket_messages": tally.ws_messages / n,
        "rest_requests": tally.rest_requests / n,
        "lambda_requests": tally.invocations / n,
        "lambda_gb_seconds": lambda_gb_seconds(tally, load, activity),
        "dynamodb_write_units": tally.write_units / n,
        "dynamodb_read_units": tally.read_units / n,
        "sqs_requests": tally.sqs_requests / n,
        "logs_ingested_gb": log_bytes / GIB / n,
        # kept 30 days (LogRetentionDays): a month's lines stay about a month (uncompressed: an upper bound)
        "logs_stored_gb_month": log_bytes / GIB / n,
    }


def stored_bytes_per_user(measured: Measured, load: Load) -> float:
    """Steady state: a user's messages of one retention period, each with its id marker."""
    return measured.bytes_per_message * load.sends * load.retention_days


def modelled_meters(measured: Measured, load: Load) -> dict[str, dict[str, float]]:
    stored_gb = stored_bytes_per_user(measured, load) / GIB
    return {
        "storage": {"dynamodb_storage_gb_month": stored_gb, "dynamodb_pitr_gb_month": stored_gb},
        "connection minutes": {"websocket_connection_minutes": modelled_connection_minutes(load)},
    }


def modelled_connection_minutes(load: Load) -> float:
    return load.devices * load.online_hours * 60 * DAYS


def line_meters(measured: Measured, load: Load) -> dict[str, defaultdict[str, float]]:
    """Per line, each meter's quantity per user-month."""
    counts = occurrences_per_user_month(load)
    modelled = modelled_meters(measured, load)
    result: dict[str, defaultdict[str, float]] = {}
    for line, activities in LINES.items():
        quantities = defaultdict(float, modelled.get(line, {}))
        for activity in activities:
            for meter, amount in meters_per_occurrence(measured.tallies[activity], load, activity).items():
                if activity == "push" and meter in COALESCED_METERS:
                    amount *= 1 - load.coalesced_share()  # fewer messages, fewer posts to wait for
                quantities[meter] += amount * counts[activity]
        result[line] = quantities
    return result


def load_prices(region: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(units, the region's prices) from infra/aws/prices.json."""
    table = json.loads(PRICES.read_text(encoding="utf-8"))
    if region not in table["regions"]:
        raise SystemExit(
            f"cost bench: no prices for {region} in {PRICES} (have {', '.join(table['regions'])})"
        )
    return table["units"], table["regions"][region]


def usd(meter: str, quantity: float, units: Mapping[str, Any], prices: Mapping[str, Any]) -> float:
    return float(quantity * prices[meter]["usd"] / units[meter]["per"])


#: Per meter of the bill, the physical quantity the footprint model prices (GiB to its decimal GB):
#: tables on solid-state drives, backups and logs on hard disks; the network's bytes are measured
#: apart (``Tally.bytes_out``). Request meters (DynamoDB units, API Gateway, SQS) have no energy
#: factor of their own: the compute behind them is AWS's and not metered, so it is left out.
PHYSICAL = {
    "lambda_gb_seconds": ("lambda_gb_seconds", 1.0),
    "dynamodb_storage_gb_month": ("ssd_gb_month", GIB / GB),
    "dynamodb_pitr_gb_month": ("hdd_gb_month", GIB / GB),
    "logs_stored_gb_month": ("hdd_gb_month", GIB / GB),
}


def physical(meters: Mapping[str, float], bytes_out: float) -> dict[str, float]:
    """What the footprint model prices, from a bill's meters and the bytes the server sent."""
    quantities: defaultdict[str, float] = defaultdict(float, network_gb=bytes_out / GB)
    for meter, amount in meters.items():
        if meter in PHYSICAL:
            name, scale = PHYSICAL[meter]
            quantities[name] += amount * scale
    return dict(quantities)


def footprint_of(quantities: Mapping[str, float], f: Footprint) -> dict[str, float]:
    wh = f.wh(quantities)
    return {"wh": wh, "g_co2e": f.grams(wh)}


def footprint(measured: Measured, load: Load, f: Footprint | None = None) -> dict[str, Any]:
    """Energy and CO2e per user-month by line, and per unit (a send, a push, a GB-month of the
    table, a call minute), from chalicelib/footprint.json: the model the impact page reads."""
    f = f or model()
    counts = occurrences_per_user_month(load)
    by_line = line_meters(measured, load)
    lines = {}
    for line, meters in by_line.items():
        sent = sum(
            measured.tallies[a].bytes_out / max(1, measured.tallies[a].occurrences) * counts[a]
            for a in LINES[line]
        )
        lines[line] = footprint_of(physical(meters, sent), f)
    per_unit = {}
    for unit, activity in (("send", "send"), ("push", "push")):
        tally = measured.tallies[activity]
        sent = tally.bytes_out / max(1, tally.occurrences)
        per_unit[unit] = footprint_of(physical(meters_per_occurrence(tally, load, activity), sent), f)
    per_unit["table_gb_month"] = footprint_of({"ssd_gb_month": 1}, f)
    per_unit["files_gb_month"] = footprint_of({"hdd_gb_month": 1}, f)
    call_g = f.call_minute_ug() / 1e6
    per_unit["call_minute"] = {"wh": f.wh_of_grams(call_g), "g_co2e": call_g}
    return {
        "lines": lines,
        "total": {k: sum(row[k] for row in lines.values()) for k in ("wh", "g_co2e")},
        "per_unit": per_unit,
    }


def estimate(measured: Measured, load: Load) -> dict[str, Any]:
    """The bill per user-month by line and by meter, with the bytes behind it."""
    units, prices = load_prices(load.region)
    by_line = line_meters(measured, load)
    lines = {
        line: sum(usd(m, q, units, prices) for m, q in meters.items()) for line, meters in by_line.items()
    }
    totals: defaultdict[str, float] = defaultdict(float)
    for meters in by_line.values():
        for meter, quantity in meters.items():
            totals[meter] += quantity
    meters_out = {
        m: {"quantity": q, "usd": usd(m, q, units, prices), "unit": units[m]["meaning"]}
        for m, q in totals.items()
    }
    counts = occurrences_per_user_month(load)
    tallies = measured.tallies
    transferred = sum(t.bytes_out / max(1, t.occurrences) * counts.get(a, 0) for a, t in tallies.items())
    total = sum(lines.values())
    return {
        "load": dataclasses.asdict(load),
        "ping_every_seconds": ping_interval_seconds(),
        "total_usd_per_user_month": total,
        "pushes_coalesced_share": load.coalesced_share(),
        "total_usd_per_month": total * load.users,
        "lines": lines,
        "meters": meters_out,
        "bytes_stored_per_message": measured.bytes_per_message,
        "bytes_stored_per_user": stored_bytes_per_user(measured, load),
        "bytes_transferred_out_per_user_month": transferred,
        "data_transfer_usd_per_user_month": usd("data_transfer_out_gb", transferred / GIB, units, prices),
        "per_operation": {a: per_operation(t) for a, t in sorted(tallies.items())},
        "log_bytes_per_invocation": log_bytes_per_invocation(tallies),
        "prices": {m: prices[m] for m in sorted(totals)},
        "footprint": footprint(measured, load),
        "right_size": right_size(measured, load),
        "delayed_batching_what_if": None if load.queued() else delayed_batching(measured, load),
        "floor": floor(load),
        "floor_usd_per_user_month": sum(floor(load).values()),
        "what_ifs": what_ifs(measured, load),
    }


def floor(load: Load) -> dict[str, float]:
    """USD per user-month the load itself costs at the carrier's list prices, however lean the
    code: every live push is a WebSocket message (but those that follow another within the
    batch window, which could share its message), every send over the socket is one inbound
    message, every online minute a connection minute, and the messages' bytes (their text
    alone, no item overhead, no backup) are stored for the retention period. Lambda, DynamoDB
    units, logs and pings are left out: code can shrink them, not this."""
    units, prices = load_prices(load.region)
    counts = occurrences_per_user_month(load)
    stored_gb = load.message_bytes * load.sends * load.retention_days / GIB
    return {
        "live pushes": usd("websocket_messages", counts["push"] * (1 - load.follow_share()), units, prices),
        "connection minutes": usd(
            "websocket_connection_minutes", modelled_connection_minutes(load), units, prices
        ),
        "sends in": usd("websocket_messages", counts["send"] * (1 - load.rest_share), units, prices)
        + usd("rest_requests", counts["send"] * load.rest_share, units, prices),
        "message bytes stored": usd("dynamodb_storage_gb_month", stored_gb, units, prices),
    }


#: What would get below the floor, each from the same measurement (the cost of one send, push,
#: read... does not change with them): fewer receives pushed live (the app in the background:
#: woken by Web Push, whose slot write and HTTPS post this bench does not count, and caught up
#: on opening), fewer hours connected.
WHAT_IFS: tuple[tuple[str, dict[str, float]], ...] = (
    ("half the live pushes", {"live_share": 0.5}),
    ("a quarter of the live pushes", {"live_share": 0.25}),
    ("4 h connected a day", {"online_hours": 4}),
    ("a quarter of the pushes, 4 h connected", {"live_share": 0.25, "online_hours": 4}),
)
#: The meters a carrier other than API Gateway (a socket server of one's own: ``bocage serve``,
#: a container) bills as a machine rather than per message and per minute.
GATEWAY_METERS = ("websocket_messages", "websocket_connection_minutes")


def what_ifs(measured: Measured, load: Load) -> list[dict[str, Any]]:
    """Per what-if: the load changed from this one, its total and its floor (USD/user-month)."""
    units, prices = load_prices(load.region)
    rows = []
    for label, change in WHAT_IFS:
        scaled: dict[str, Any] = {
            k: v * load.live_share if k == "live_share" else v for k, v in change.items()
        }
        changed = dataclasses.replace(load, **scaled)
        rows.append({"what_if": label, "load": scaled, **bill_and_floor(measured, changed, units, prices)})
    total = sum(
        usd(m, q, units, prices)
        for meters in line_meters(measured, load).values()
        for m, q in meters.items()
        if m not in GATEWAY_METERS
    )
    rows.append(
        {
            "what_if": "another carrier (a machine's cost not in)",
            "load": {},
            "total_usd_per_user_month": total,
            "floor_usd_per_user_month": floor(load)["message bytes stored"],
        }
    )
    return rows


def bill_and_floor(measured: Measured, load: Load, units: Any, prices: Any) -> dict[str, float]:
    total = sum(
        usd(m, q, units, prices) for meters in line_meters(measured, load).values() for m, q in meters.items()
    )
    return {"total_usd_per_user_month": total, "floor_usd_per_user_month": sum(floor(load).values())}


def right_size(measured: Measured, load: Load, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Per function, at each memory size: the modelled milliseconds an invocation bills
    (``duration_ms``) and its Lambda USD per user-month (duration and requests), the others
    unchanged; and the size .chalice/config.json gives it now."""
    units, prices = load_prices(load.region)
    counts = occurrences_per_user_month(load)
    out: dict[str, Any] = {}
    for activity, tally in sorted(measured.tallies.items()):
        if activity not in FUNCTIONS or not tally.invocations:
            continue
        function = function_of(activity, load)
        row = out.setdefault(function, {"configured_mb": configured_mb(function), "sizes": {}})
        for mb in sizes:
            at = row["sizes"].setdefault(mb, {"ms_per_invocation": 0.0, "usd": 0.0, "invocations": 0.0})
            n = max(1, tally.occurrences)
            monthly = counts[activity] / n
            gb_s = duration_ms(tally, mb) / 1000 * mb / 1024 * monthly
            at["usd"] += usd("lambda_gb_seconds", gb_s, units, prices) + usd(
                "lambda_requests", tally.invocations * monthly, units, prices
            )
            at["ms_per_invocation"] += duration_ms(tally, mb) * monthly  # weighted below
            at["invocations"] += tally.invocations * monthly
    for row in out.values():
        for at in row["sizes"].values():
            at["ms_per_invocation"] /= max(1e-9, at.pop("invocations"))
    return out


#: A queued follow-up's consumer time (its read and its posts' wait), an assumption: the slice of a
#: small channel never runs the queue, so the what-if below cannot measure it.
FOLLOW_UP_FANOUT_MS = 20.0


def delayed_batching(measured: Measured, load: Load) -> dict[str, float]:
    """What-if for an inline channel (not built; docs/architecture.md 6): a burst's first message
    pushed at once, the ones following it within the window queued and joined per connection.
    A burst of k then costs 1 + ceil((k - 1) / 17) messages a connection instead of k, so of a
    share q of frames that follow their previous one, only q squared ride in another's message.
    Saved: that share of the pushes' WebSocket messages and post time. Added: per queued
    follow-up an SQS send, at most a receive and a delete, one Fanout invocation
    (``FOLLOW_UP_FANOUT_MS`` at its size) and one message read; per inline send, one eventually
    consistent read of the previous message to tell a follow-up."""
    units, prices = load_prices(load.region)
    q = load.follow_share()
    counts = occurrences_per_user_month(load)
    pushes = line_meters(measured, dataclasses.replace(load, burst_share=0.0))["pushes"]
    saved = q * q * sum(usd(m, pushes[m], units, prices) for m in COALESCED_METERS)
    follow_ups = counts["send"] * q
    fanout_gb_s = FOLLOW_UP_FANOUT_MS / 1000 * configured_mb("fanout") / 1024
    added = follow_ups * (
        usd("sqs_requests", 3, units, prices)
        + usd("lambda_requests", 1, units, prices)
        + usd("lambda_gb_seconds", fanout_gb_s, units, prices)
        + usd("dynamodb_read_units", 0.5, units, prices)
    ) + counts["send"] * usd("dynamodb_read_units", 0.5, units, prices)
    return {"follow_share": q, "saved_usd": saved, "added_usd": added, "net_usd": saved - added}


def log_bytes_per_invocation(tallies: Mapping[str, Tally]) -> dict[str, float]:
    """What one function run writes to CloudWatch Logs, on average over the slice: the app's own
    structured lines (measured, with CloudWatch's 26 bytes an event) and Lambda's START, END and
    REPORT lines (modelled: typical lengths)."""
    runs = sum(t.invocations for t in tallies.values()) or 1
    app = sum(t.log_bytes + t.log_events * LOG_EVENT_OVERHEAD for t in tallies.values()) / runs
    platform = PLATFORM_LOG_BYTES + PLATFORM_LOG_EVENTS * LOG_EVENT_OVERHEAD
    return {"app": app, "platform": platform, "total": app + platform}


def per_operation(tally: Tally) -> dict[str, Any]:
    """An activity's measured cost per occurrence, as the pinned test reads it."""
    n = max(1, tally.occurrences)
    return {
        "occurrences": tally.occurrences,
        "calls": {name: count / n for name, count in sorted(tally.calls.items())},
        "write_units": tally.write_units / n,
        "read_units": tally.read_units / n,
        "ws_messages": tally.ws_messages / n,
        "lambda_requests": tally.invocations / n,
        "lambda_ms": tally.lambda_ms / n,
        "log_bytes": tally.log_bytes / n,
    }


# -- the report --------------------------------------------------------------------------------


def describe(load: Load) -> str:
    return (
        f"{load.sends:g} sent and {load.receives:g} received a user a day, {load.online_hours:g} h online, "
        f"{load.devices:g} device(s), channel of {load.members()}, {load.live_share:.0%} of receives live, "
        f"{load.retention_days}-day retention, {load.message_bytes}-byte messages, "
        f"{load.rest_share:.0%} of sends over REST, "
        f"{f'{load.lambda_mb} MB functions' if load.lambda_mb else f'functions sized as {STAGE}'}, "
        f"{load.region}; "
        f"pushes coalesced: {load.coalesced_share():.1%} "
        f"({'queue path' if load.queued() else f'inline: at most {INLINE_LIMIT} connections, never batched'})"
    )


def print_report(result: Mapping[str, Any], load: Load) -> None:
    total = result["total_usd_per_user_month"]
    print(f"AWS cost per user-month at {describe(load)}")
    feet = result["footprint"]
    print(f"\n{'line':<22}{'USD/user-month':>16}{'share':>8}{'Wh':>10}{'g CO2e':>9}")
    for line, amount in result["lines"].items():
        row = feet["lines"][line]
        print(f"{line:<22}{amount:>16.4f}{amount / total:>8.0%}{row['wh']:>10.3f}{row['g_co2e']:>9.3f}")
    print(f"{'total':<22}{total:>16.4f}{'':>8}{feet['total']['wh']:>10.3f}{feet['total']['g_co2e']:>9.3f}")
    if load.users > 1:
        print(f"{load.users} users: {result['total_usd_per_month']:.2f} USD a month")
    print(f"\n{'AWS meter':<30}{'quantity/user-month':>22}{'USD':>10}")
    for meter, row in sorted(result["meters"].items(), key=lambda kv: -kv[1]["usd"]):
        print(f"{meter:<30}{row['quantity']:>22.6g}{row['usd']:>10.4f}")
    print(f"\nper operation (measured; pings every {result['ping_every_seconds']:g} s):")
    for activity, row in result["per_operation"].items():
        calls = ", ".join(f"{name} {count:g}" for name, count in row["calls"].items())
        print(
            f"  {activity:<13} WU {row['write_units']:.2f}  RU {row['read_units']:.2f}  "
            f"{row['lambda_ms']:.1f} ms  logs {row['log_bytes']:.0f} B  [{calls}]"
        )
    print(f"\nright-sizing (modelled: CPU time x 1769/MB below one vCPU, AWS waits unchanged; {STAGE} now):")
    print(f"  {'function':<22}" + "".join(f"{f'{mb} MB':>22}" for mb in SIZES) + f"{'now':>8}")
    for function, row in result["right_size"].items():
        cells = "".join(
            f"{at['ms_per_invocation']:>10.1f} ms {at['usd']:>7.4f} $" for at in row["sizes"].values()
        )
        print(f"  {function:<22}{cells}{row['configured_mb']:>5} MB")
    what_if = result["delayed_batching_what_if"]
    if what_if is not None:
        print(
            f"\ndelayed batching for this inline channel (not built; {what_if['follow_share']:.1%} of frames "
            f"follow within {load.burst_window_s:g} s): saves {what_if['saved_usd']:.4f}, adds "
            f"{what_if['added_usd']:.4f}, net {what_if['net_usd']:+.4f} USD/user-month"
        )
    print_floor(result, load)
    logs = result["log_bytes_per_invocation"]
    print(
        f"\nlogs per function run: {logs['total']:.0f} bytes billed ({logs['app']:.0f} of the app's "
        f"structured lines, {logs['platform']:.0f} of Lambda's START/END/REPORT, modelled)"
    )
    stored, sent = result["bytes_stored_per_user"], result["bytes_transferred_out_per_user_month"]
    print(f"\na message and its id marker: {result['bytes_stored_per_message']:.0f} bytes stored")
    transfer_usd = result["data_transfer_usd_per_user_month"]
    print(f"\nstored per user (steady state): {stored / 1e6:.2f} MB; out per user-month: {sent / 1e6:.2f} MB")
    print(
        f"data transfer out, not in the total: {transfer_usd:.4f} USD/user-month "
        "(AWS's 100 GB a month of free transfer out covers it for most organisations)"
    )
    print("prices: infra/aws/prices.json, list prices marked 'to re-check'; no free tier")
    units = ", ".join(
        f"{name.replace('_', ' ')} {row['g_co2e'] * 1000:.4g} mg ({row['wh'] * 1000:.4g} mWh)"
        for name, row in feet["per_unit"].items()
    )
    print(f"footprint per unit: {units}")
    print(
        "footprint: chalicelib/footprint.json (electricity only; the network's bytes are those the "
        "server sends; DynamoDB, API Gateway and SQS requests have no factor), as the impact page"
    )


def print_floor(result: Mapping[str, Any], load: Load) -> None:
    total, lowest = result["total_usd_per_user_month"], result["floor_usd_per_user_month"]
    print(
        f"\nfloor the load sets at list prices, whatever the code ({load.follow_share():.1%} of pushes "
        f"could share a message): {lowest:.4f} USD/user-month; above it: {total - lowest:.4f}"
    )
    for line, amount in result["floor"].items():
        print(f"  {line:<24}{amount:>10.4f}")
    print(f"what-ifs (same measurement; {'total':>8} {'floor':>8} USD/user-month):")
    for row in result["what_ifs"]:
        amounts = f"{row['total_usd_per_user_month']:>10.4f}{row['floor_usd_per_user_month']:>9.4f}"
        print(f"  {row['what_if']:<42}{amounts}")


def parse_load(argv: list[str] | None) -> tuple[Load, int, bool]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="reference")
    for f in dataclasses.fields(Load):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(Load(), f.name)), default=None)
    parser.add_argument(
        "--slice-messages", type=int, default=200, help="messages sent in the slice (a full page: 200)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    chosen = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(Load) if getattr(args, f.name) is not None
    }
    return dataclasses.replace(PRESETS[args.preset], **chosen), args.slice_messages, args.json


def main(argv: list[str] | None = None) -> None:
    load, messages, as_json = parse_load(argv)
    result = estimate(run_slice(load, messages), load)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result, load)


if __name__ == "__main__":
    main()

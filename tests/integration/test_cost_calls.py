"""The AWS calls each operation makes, as bench/cost.py counts them (issue 18).

The app runs on in-process moto with the real adapters (DynamoDB, SQS, API Gateway push, SES);
every boto3 call is counted by service and operation, and DynamoDB's write and read units are
computed from the stored items' sizes. The counts are pinned exactly, not the dollars: a change
that adds a call, a write or a push to an operation fails here, and its cost shows in the bench.
"""

from __future__ import annotations

import importlib
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

# bench/ holds scripts, not a package: a static import would name bench/cost.py twice for mypy.
cost: Any = importlib.import_module("bench.cost")

MEMBERS = 3
TEXT_BYTES = cost.Load().message_bytes  # the reference load's message: its sealed content is 1 KiB


@pytest.fixture(scope="module")
def with_web_push() -> dict[str, Any]:
    """A send over the WebSocket with Web Push configured, every device online: on a deployment
    of its own, over before the module's starts (each moto mock resets its backends: two cannot
    overlap). The first send copies the roster; the second is measured."""
    with cost.deployed("eu-west-3", web_push=True) as running:
        members = running.open_channel(MEMBERS)
        for i, member in enumerate(members):
            running.connect(member, f"c{i}")
        running.send(members[0], TEXT_BYTES, "c0")
        running.meter.tallies.pop("send")
        running.send(members[0], TEXT_BYTES, "c0")
        send: dict[str, Any] = cost.per_operation(running.meter.tallies["send"])
        return send


@pytest.fixture(scope="module")
def deployment(with_web_push: dict[str, Any]) -> Iterator[Any]:
    """One channel of three members, each online with one connection (set up free of charge)."""
    del with_web_push  # measured first, on its own deployment (see there)
    with cost.deployed("eu-west-3") as running:
        members = running.open_channel(MEMBERS)
        for i, member in enumerate(members):
            running.connect(member, f"c{i}")
        yield running


@pytest.fixture(scope="module")
def measured(deployment: Any) -> dict[str, dict[str, Any]]:
    members = deployment.members
    deployment.send(members[0], TEXT_BYTES)  # over REST, as a client without a socket
    tallies = deployment.meter.tallies
    over_rest = {"send_over_rest": cost.per_operation(tallies.pop("send")), "push_rest": tallies.pop("push")}
    deployment.send(members[0], TEXT_BYTES, "c0")  # over its open WebSocket, as clients do by default
    deployment.catch_up(members[1], 1)  # a page of one message
    deployment.list_channels(members[1])
    deployment.ping("c0")
    for i in range(MEMBERS):
        deployment.disconnect(f"c{i}")
    measured = {activity: cost.per_operation(t) for activity, t in deployment.meter.tallies.items()}
    return measured | {"send_over_rest": over_rest["send_over_rest"]}


def test_a_send_over_the_websocket_costs_11_dynamodb_calls_and_4_write_units(
    measured: dict[str, Any],
) -> None:
    send = measured["send"]
    # the connection, device, member (the frame's sender, re-checked: no nonce); channel,
    # membership, epoch, organisation; the id marker (a resend?); the sequence number (which
    # also counts the month's impact), the marker, the message; presence
    assert send["calls"] == {
        "apigatewaymanagementapi.PostToConnection": 1,  # the ack, to the sending connection only
        "dynamodb.GetItem": 8,
        "dynamodb.PutItem": 2,
        "dynamodb.Query": 1,
        "dynamodb.UpdateItem": 1,
    }
    # sequence 1, marker 1, the 1 KiB message (a 1,273-byte item: over 1 KB, its ciphertext alone is) 2
    assert send["write_units"] == 4
    assert send["read_units"] == 8.5
    # the frame in and the ack out; one function, no REST request
    assert (send["ws_messages"], send["lambda_requests"]) == (2, 1)


def test_a_send_over_rest_costs_12_dynamodb_calls_and_5_write_units(measured: dict[str, Any]) -> None:
    send = measured["send_over_rest"]
    # device, member, nonce (authentication); channel, membership, epoch, organisation; the id
    # marker (a resend?); the sequence number, the marker, the message; presence
    assert send["calls"] == {
        "dynamodb.GetItem": 7,
        "dynamodb.PutItem": 3,
        "dynamodb.Query": 1,
        "dynamodb.UpdateItem": 1,
    }
    # nonce 1, sequence 1, marker 1, the message 2
    assert send["write_units"] == 5
    # every read strongly consistent but the presence query (half a unit: records/presence.py)
    assert send["read_units"] == 7.5


def test_a_send_pushes_once_to_every_connection_but_the_sending_devices(measured: dict[str, Any]) -> None:
    push = measured["push"]
    assert push["occurrences"] == MEMBERS - 1  # the two recipients: no echo to the sender
    assert push["calls"] == {"apigatewaymanagementapi.PostToConnection": 1}
    assert push["write_units"] == push["read_units"] == 0


def test_a_catch_up_read_and_a_channel_list(measured: dict[str, Any]) -> None:
    read = measured["read"]
    assert read["occurrences"] == 1  # the one message in the channel
    assert read["calls"] == {"dynamodb.GetItem": 5, "dynamodb.PutItem": 2, "dynamodb.Query": 1}
    # writes: nonce and read cursor; the page itself is an eventually consistent query (half a unit)
    assert (read["write_units"], read["read_units"]) == (2, 5.5)
    listing = measured["channel_list"]
    assert listing["calls"] == {"dynamodb.GetItem": 5, "dynamodb.PutItem": 1, "dynamodb.Query": 2}
    assert (listing["write_units"], listing["read_units"]) == (1, 7)


def test_a_ping_is_one_inbound_message_and_no_call(measured: dict[str, Any]) -> None:
    """The template's ``ping`` route ends in API Gateway (tests/integration/test_infra.py)."""
    ping = measured["ping"]
    assert ping["calls"] == {}
    assert (ping["ws_messages"], ping["lambda_requests"]) == (1, 0)
    assert (ping["write_units"], ping["read_units"]) == (0, 0)


def test_connect_and_disconnect_write_and_delete_presence(measured: dict[str, Any]) -> None:
    connect, disconnect = measured["connect"], measured["disconnect"]
    assert connect["occurrences"] == disconnect["occurrences"] == MEMBERS
    # device and member (authentication), nonce; the member's channels; presence; the device's
    # connections (the per-device cap)
    assert connect["calls"] == {
        "dynamodb.BatchWriteItem": 1,
        "dynamodb.GetItem": 2,
        "dynamodb.PutItem": 1,
        "dynamodb.Query": 2,
    }
    assert (connect["write_units"], connect["read_units"]) == (4, 4)
    assert disconnect["calls"] == {"dynamodb.BatchWriteItem": 1, "dynamodb.GetItem": 1, "dynamodb.Query": 1}
    assert (disconnect["write_units"], disconnect["read_units"]) == (3, 2)


def test_nothing_else_was_charged(measured: dict[str, Any]) -> None:
    assert set(measured) == {
        "connect",
        "send",
        "send_over_rest",
        "push",
        "read",
        "channel_list",
        "ping",
        "disconnect",
    }


def test_naming_a_member_in_notify_adds_one_read_and_no_write(
    deployment: Any, measured: dict[str, Any]
) -> None:
    """docs/protocol.md 17: ``notify`` is checked (one membership read per named member) and never
    stored; without Web Push configured nothing else changes."""
    named = str(deployment.members[1].messenger.info["member_id"])
    deployment.connect(deployment.members[0], "c0")  # the measured slice disconnected everyone
    deployment.send(deployment.members[0], TEXT_BYTES, "c0", notify=[named], activity="send_notify")
    send = cost.per_operation(deployment.meter.tallies.pop("send_notify"))
    plain = measured["send"]
    assert send["calls"] == {**plain["calls"], "dynamodb.GetItem": plain["calls"]["dynamodb.GetItem"] + 1}
    assert send["write_units"] == plain["write_units"] == 4


def test_web_push_adds_no_call_to_a_send_that_reaches_every_device(
    with_web_push: dict[str, Any], measured: dict[str, Any]
) -> None:
    """With Web Push configured each new message asks whether a device of the channel is left to
    wake, by the roster copy kept under the roster version (services/roster_cache.py). That
    version comes back with the write that numbers the message: no read of its own (issue 17),
    and with every device online, no subscription to read and nothing queued."""
    assert with_web_push["calls"] == measured["send"]["calls"]
    assert with_web_push["calls"]["dynamodb.GetItem"] == 8
    assert (with_web_push["write_units"], with_web_push["read_units"]) == (4, 8.5)


def test_the_bench_counts_coalescing_only_where_the_queue_carries_the_pushes() -> None:
    """Inline fan-outs have one frame per connection per send: nothing to join. On the queue path
    a frame that follows the previous within the window rides in its WebSocket message: by
    chance at the load's own rate (500 a day over 8 h: 1.7 % within a second), or by bursts."""
    reference = cost.Load(lambda_mb=1024)  # one size: the inline and the queue path's functions alike
    assert not reference.queued() and reference.coalesced_share() == 0
    large = cost.Load(channel_size=120, burst_share=0.3, lambda_mb=1024)
    assert large.queued()
    assert large.coalesced_share() == pytest.approx(0.3 + 0.7 * (1 - math.exp(-500 / (8 * 3600))))
    measured = cost.Measured(
        defaultdict(cost.Tally, push=cost.Tally(occurrences=10, ws_messages=10, lambda_ms=50.0)), 2000.0
    )
    pushes = {load: cost.line_meters(measured, load)["pushes"] for load in (reference, large)}
    saved = 1 - large.coalesced_share()
    assert pushes[large]["websocket_messages"] == pytest.approx(
        cost.occurrences_per_user_month(large)["push"] * saved
    )
    assert pushes[reference]["websocket_messages"] == cost.occurrences_per_user_month(reference)["push"]
    assert pushes[large]["lambda_gb_seconds"] == pytest.approx(pushes[reference]["lambda_gb_seconds"] * saved)


def test_the_impact_page_and_the_bench_price_a_notification_from_one_model(deployment: Any) -> None:
    """The impact page's per-message figure (one message delivered to one recipient) is the
    bench's per-push figure for the same inputs: the bytes chalicelib/footprint.json declares
    on the wire and no function time (the page counts the network only)."""
    page = deployment.api.call("GET", "/impact")
    assert page.status == 200, page.body
    declared = int(cost.model().value("notification_wire_bytes"))
    push = cost.Tally(occurrences=4, bytes_out=4 * declared)
    same_inputs = cost.Measured(defaultdict(cost.Tally, push=push), 0)
    bench = cost.footprint(same_inputs, cost.Load())["per_unit"]["push"]
    assert page.body["assumptions"]["co2e_ug_per_notification"] == round(bench["g_co2e"] * 1e6) == 240
    # 8 KB x 0.06 kWh/GB = 0.48 mWh, at 500 g CO2e/kWh
    assert bench["wh"] == pytest.approx(0.48e-3)
    assert "Aslan" in page.body["assumptions"]["sources"]["notification"]


def test_the_bench_s_footprint_follows_what_it_measured(measured: dict[str, Any], deployment: Any) -> None:
    """Per line, energy is the model's price of what the bench counted: bytes the server sent,
    Lambda GB-seconds and GB-months stored. A push of the 1 KiB message weighs its frame's bytes
    and its function time, far under the page's deliberately high 8 KB."""
    tallies = deployment.meter.tallies
    push = tallies["push"]
    load = cost.Load(lambda_mb=1024)
    f = cost.model()
    per_push = cost.footprint(cost.Measured(dict(tallies), 2000.0), load)["per_unit"]["push"]
    frame = push.bytes_out / push.occurrences
    assert 1000 < frame < 3000  # the sealed 1 KiB message and its labels
    gb_s = cost.lambda_gb_seconds(push, load, "push")
    expected = f.wh({"network_gb": frame / 1e9, "lambda_gb_seconds": gb_s})
    assert per_push["wh"] == pytest.approx(expected)
    assert 0 < per_push["g_co2e"] * 1e6 < f.notification_ug()
    storage = cost.footprint(cost.Measured(dict(tallies), 2000.0), load)["lines"]["storage"]
    stored_gb = 2000.0 * load.sends * load.retention_days / 1e9  # a table GB-month, plus its backup
    assert storage["wh"] == pytest.approx(stored_gb * (f.wh_per_gb_month("ssd") + f.wh_per_gb_month("hdd")))


def test_the_bench_models_lambda_memory_as_a_share_of_a_vcpu() -> None:
    """Below 1,769 MB a function's own CPU time stretches by 1769 / MB; its waits on AWS do not.
    So a handler that mostly waits costs less at 256 MB, and one that mostly computes costs about
    the same GB-seconds at any size under a vCPU, only slower."""
    computing = cost.Tally(occurrences=1, invocations=1, lambda_ms=100.0, wait_ms=0.0)
    waiting = cost.Tally(occurrences=1, invocations=1, lambda_ms=100.0, wait_ms=90.0)
    assert cost.duration_ms(computing, 1769) == pytest.approx(100.0)
    assert cost.duration_ms(computing, 3538) == pytest.approx(100.0)  # one thread: no gain past a vCPU
    assert cost.duration_ms(computing, 256) == pytest.approx(100.0 * 1769 / 256)
    assert cost.duration_ms(waiting, 256) == pytest.approx(10.0 * 1769 / 256 + 90.0)
    gb_s = {mb: cost.lambda_gb_seconds(computing, cost.Load(lambda_mb=mb), "read") for mb in (256, 1024)}
    assert gb_s[256] == pytest.approx(gb_s[1024])
    waits = {mb: cost.lambda_gb_seconds(waiting, cost.Load(lambda_mb=mb), "read") for mb in (256, 1024)}
    assert waits[256] < waits[1024] / 2
    # without --lambda-mb each activity's function has the size .chalice/config.json gives it
    assert cost.memory_mb("read", cost.Load()) == cost.configured_mb("api_handler")
    assert cost.function_of("push", cost.Load(channel_size=120)) == "fanout"


def test_delayed_batching_would_lose_money_without_bursts_and_save_little_with_them() -> None:
    """The what-if behind not building delayed batching for inline channels (docs/architecture.md
    6): of the frames that follow their previous one (share q), only q squared would ride in
    another's message, while every follow-up pays the queue and every send a read."""
    push = cost.Tally(occurrences=10, ws_messages=10, lambda_ms=20.0, wait_ms=20.0)
    send = cost.Tally(occurrences=1, invocations=1, lambda_ms=30.0, wait_ms=20.0)
    measured = cost.Measured(defaultdict(cost.Tally, push=push, send=send), 2000.0)
    quiet = cost.delayed_batching(measured, cost.Load())
    assert quiet["follow_share"] == pytest.approx(1 - math.exp(-500 / (8 * 3600)))
    assert quiet["net_usd"] < 0
    bursty = cost.delayed_batching(measured, cost.Load(burst_share=0.3))
    pushes = cost.line_meters(measured, cost.Load())["pushes"]
    units, prices = cost.load_prices("eu-west-3")
    messages_usd = cost.usd("websocket_messages", pushes["websocket_messages"], units, prices)
    assert bursty["saved_usd"] > bursty["follow_share"] ** 2 * messages_usd > 0
    assert 0 < bursty["net_usd"] < 0.1 * messages_usd  # a sliver of the pushes line


def test_the_floor_is_what_the_load_costs_at_list_prices_whatever_the_code() -> None:
    """At the reference load, 15,000 live pushes and 14,400 connection minutes a month already
    cost more than the issue's 0.020 USD goal on API Gateway: the bench says so, from the price
    table, and only a lighter load (fewer pushes live, fewer hours) lowers it."""
    load = cost.Load()
    prices = cost.load_prices("eu-west-3")[1]
    per_message, per_minute = (
        prices["websocket_messages"]["usd"] / 1e6,
        prices["websocket_connection_minutes"]["usd"] / 1e6,
    )
    lowest = cost.floor(load)
    assert lowest["live pushes"] == pytest.approx(500 * 30 * (1 - load.follow_share()) * per_message)
    assert lowest["connection minutes"] == pytest.approx(8 * 60 * 30 * per_minute)
    assert lowest["sends in"] == pytest.approx(50 * 30 * per_message)
    assert lowest["message bytes stored"] == pytest.approx(
        955 * 50 * 90 / 2**30 * prices["dynamodb_storage_gb_month"]["usd"]
    )
    assert lowest["live pushes"] + lowest["connection minutes"] > 0.020
    quarter = cost.floor(cost.Load(live_share=0.25, online_hours=4))
    assert sum(quarter.values()) < 0.5 * sum(lowest.values())


def test_pings_are_counted_only_in_the_quiet_the_device_s_own_sends_leave() -> None:
    """The web client pings after 8 minutes without a frame of its own: replaying its rule on
    random send times gives the bench's count, and a device that never sends pings every 8 min."""
    every = cost.ping_interval_seconds()
    assert cost.pings_a_day(cost.Load(sends=0)) == 8 * 3600 / every
    load = cost.Load()  # 50 sends over 8 h online
    rng = random.Random(18)
    rate, online, pings, t = load.sends / (load.online_hours * 3600), load.online_hours * 3600, 0, 0.0
    days = 400
    for _ in range(days):
        t, last = 0.0, 0.0
        while True:
            t += rng.expovariate(rate)
            end = min(t, online)
            pings += int((end - last) // every)  # the rule: a ping whenever 8 quiet minutes pass
            if t >= online:
                break
            last = t
    assert cost.pings_a_day(load) == pytest.approx(pings / days, rel=0.05)
    assert cost.pings_a_day(load) < 0.7 * cost.pings_a_day(cost.Load(sends=0))

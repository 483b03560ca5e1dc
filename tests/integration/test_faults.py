"""Faults injected into the store and the push: nothing half-written, nothing lost.

Every route either completes or answers a 5xx JSON error that a plain resend finishes; a
message resent after a failure at any step of its send is stored exactly once; a fan-out
chunk delivered twice stores nothing twice; a push that fails or hangs costs only its own
connection's live copy. The faults themselves come from tests/faults.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bocage.client.issuing import member_ticket, role_statement
from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.messages import message_fields
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.direct import new_channel_seed
from chalicelib.ports import Store
from chalicelib.services.messaging import GAP_GRACE
from chalicelib.settings import Settings
from tests.faults import STORE_FAULTS, FaultyPush, FaultyStore, condition_failed, read_timeout
from tests.support import People, RecordingMailer, RecordingPush, Reply, SignedApi, scan_all, sealed_envelope

Owner = tuple[DeviceKeys, dict[str, Any]]


@pytest.fixture
def faulty(app_store: Store) -> FaultyStore:
    return FaultyStore(app_store)


@pytest.fixture
def faulty_push(push: RecordingPush) -> FaultyPush:
    return FaultyPush(push, hang_seconds=1.0)


@pytest.fixture
def container(
    faulty: FaultyStore,
    clock: ManualClock,
    mailer: RecordingMailer,
    operator: OperatorKey,
    faulty_push: FaultyPush,
) -> Iterator[wiring.Container]:
    """The app on the faulty store and push (everything else as tests/conftest.py builds it)."""
    settings = dataclasses.replace(
        Settings(), public_url="https://api.bocage.test", operator_keys=(operator.public_key,)
    )
    built = wiring.build(settings, store=faulty, clock=clock, mailer=mailer, push=faulty_push)
    wiring.use(built)
    yield built
    wiring.use(None)


def stored_copies(store: FaultyStore, channel_id: str) -> Counter[str]:
    """How many stored messages of the channel carry each client message id (read under the faults)."""
    rows = query_all(store.inner, keys.channel_partition(channel_id), keys.MESSAGE_PREFIX)
    return Counter(str(message_fields(row)["message_id"]) for row in rows)


def new_group_body(trust: Any) -> dict[str, Any]:
    """A POST /channels body: the id made from a fresh seed, its creation signed by ``trust``."""
    seed = new_channel_seed()
    entry = trust.new_channel_entry("group", seed)
    return {"kind": "group", "name": "H", "membership": entry, "id_seed": seed}


def retry_safe(reply: Reply) -> bool:
    """A failure a client can simply resend after: a 5xx with a JSON error code."""
    return reply.status >= 500 and isinstance(reply.body, dict) and bool(reply.body.get("error"))


def resend_until_stored(api: SignedApi, send: Callable[[], Reply]) -> Reply:
    """Resend as a client would: at once, and again past ``GAP_GRACE`` if told it is in flight."""
    reply = send()
    if reply.status == 503 and reply.body["error"] == "send_in_flight":
        api.clock.advance(GAP_GRACE + 1)
        reply = send()
    return reply


# -- sending: a failure at each store call in turn, then a resend ------------------------------


@pytest.mark.parametrize("landed", [False, True], ids=["write-lost", "write-landed-then-timeout"])
def test_a_resend_after_a_fault_at_any_step_of_send_stores_one_message(
    people: People, api: SignedApi, faulty: FaultyStore, landed: bool
) -> None:
    bob = people.join("bob")
    cid = people.owner.create_channel("group", "Conseil")["channel_id"]
    people.owner.add_member(cid, people.info["bob"]["member_id"])
    api.ws_connect(people.keys["bob"], "conn-bob")
    owner = people.keys["owner"]

    def post(envelope: dict[str, Any]) -> Reply:
        return api.call("POST", f"/channels/{cid}/messages", envelope, signer=owner)

    probe = sealed_envelope(
        people.owner, cid, {"type": "text", "text": "probe"}
    )  # the key goes out here, once
    faulty.heal()
    assert post(probe).status == 201
    steps = list(faulty.calls)  # authentication, checks, marker read, number, marker, message, fan-out
    assert {op for op, _ in steps} >= {"get", "put", "increment", "query"}
    sent: list[str] = ["probe"]
    for step in range(1, len(steps) + 1):
        envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": f"step {step}"})
        faulty.fail("any", nth=step, error=read_timeout, after=landed)
        first = post(envelope)
        faulty.heal()
        assert first.status == 201 or retry_safe(first), (step, steps[step - 1], first)
        again = resend_until_stored(api, lambda envelope=envelope: post(envelope))  # type: ignore[misc]
        assert again.status == 201, (step, steps[step - 1], again)
        assert stored_copies(faulty, cid)[envelope["message_id"]] == 1, (step, steps[step - 1])
        sent.append(f"step {step}")
    api.clock.advance(GAP_GRACE + 1)  # numbers taken by failed attempts are gaps readers skip
    assert [m["text"] for m in bob.read(cid)["messages"]] == sent


@pytest.mark.parametrize("fault", sorted(STORE_FAULTS))
def test_every_store_fault_on_the_channel_counter_is_retry_safe(
    people: People, api: SignedApi, faulty: FaultyStore, fault: str
) -> None:
    """ "Every increment on CHAN#…/STATE" fails: sends answer 5xx until it heals, then land once."""
    cid = people.owner.create_channel("group", "G")["channel_id"]
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "once"})
    faulty.fail("increment", key=keys.channel_state(cid), error=STORE_FAULTS[fault])
    for _ in range(3):
        reply = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
        assert retry_safe(reply), reply
    faulty.heal()
    stored = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    assert stored.status == 201 and stored.body["duplicate"] is False
    assert stored_copies(faulty, cid) == {envelope["message_id"]: 1}


def test_a_resend_after_a_lost_message_write_and_a_lost_give_back_lands_once(
    people: People, api: SignedApi, faulty: FaultyStore
) -> None:
    """Two faults in a row: the message write and the release of its id. The resend waits out
    GAP_GRACE (503 send_in_flight meanwhile), takes the id back and stores the message once."""
    cid = people.owner.create_channel("group", "G")["channel_id"]
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "twice unlucky"})
    marker = keys.message_marker(cid, envelope["message_id"])

    def post() -> Reply:
        return api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])

    faulty.fail("put", key=keys.message(cid, 1))
    faulty.fail("put", key=marker, nth=2)  # the marker, then the give-back
    assert retry_safe(post())
    faulty.heal()
    waiting = post()
    assert (waiting.status, waiting.body["error"]) == (503, "send_in_flight")
    api.clock.advance(GAP_GRACE + 1)
    stored = post()
    assert stored.status == 201 and stored.body["duplicate"] is False and stored.body["seq"] == 2
    assert stored_copies(faulty, cid) == {envelope["message_id"]: 1}
    assert post().body["duplicate"] is True


def test_a_delete_for_everyone_resent_after_its_tombstone_failed_completes(
    people: People, api: SignedApi, faulty: FaultyStore
) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    target = sealed_envelope(people.owner, cid, {"type": "text", "text": "oops"})
    assert api.call("POST", f"/channels/{cid}/messages", target, signer=people.keys["owner"]).status == 201
    deletion = deletion_of(people, cid, target["message_id"])
    faulty.fail("put", key=keys.message(cid, 1))  # the tombstone over message #1
    first = api.call("POST", f"/channels/{cid}/messages", deletion, signer=people.keys["owner"])
    assert retry_safe(first)
    faulty.heal()
    again = api.call("POST", f"/channels/{cid}/messages", deletion, signer=people.keys["owner"])
    assert again.status == 201 and again.body["duplicate"] is True
    first_copy = people.owner.read(cid)["messages"][0]
    assert first_copy["deleted"] is True and first_copy.get("text") is None


def deletion_of(people: People, channel_id: str, message_id: str) -> dict[str, Any]:
    """A sealed "delete for everyone" of ``message_id``, to send (and resend) by hand."""
    from bocage.client.crypto import new_message_id

    envelope = people.owner.seal(
        channel_id, new_message_id(), {"type": "delete", "target": message_id}, "delete", message_id
    )
    return dict(envelope.model_dump(mode="json"))


# -- every route: a fault at each write in turn, then the same request again -------------------


@dataclasses.dataclass
class Route:
    """One request a client makes; ``prepare`` runs before the faults (fresh codes, ids)."""

    name: str
    call: Callable[[Any], Reply]
    prepare: Callable[[], Any] = lambda: None
    ok: tuple[int, ...] = (200, 201)


def routes(people: People, api: SignedApi, operator: OperatorKey) -> list[Route]:
    """Each route with the protocol v2 statements a client signs once and resends as they are."""
    owner = people.keys["owner"]
    org_id = api.devices[owner.device_id]["org_id"]
    people.join("bob")
    bob_id = people.info["bob"]["member_id"]
    cid = people.owner.create_channel("group", "G")["channel_id"]
    trust = people.owner.trust

    def ticket() -> dict[str, Any]:
        issued = member_ticket(owner.signing, owner.device_id, org_id, "member", "New", api.clock.now())
        return {"display_name": "New", "role": "member", "ticket": issued.statement}

    def invite() -> tuple[str, DeviceKeys]:
        return api.invite(owner, "New")["activation_code"], DeviceKeys.generate()

    def activate(invited: tuple[str, DeviceKeys]) -> Reply:
        code, keys = invited
        return api.activate(code, "New", keys=keys)[1]

    def add_bob() -> dict[str, Any]:  # then, once bob is in, a role change to the same role
        op = "role" if bob_id in trust.membership(cid).members else "add"
        return {"role": "member", "membership": trust.next_entry(cid, op, bob_id, "member")}

    def make_admin() -> dict[str, Any]:
        bob = api.member_row(owner, bob_id)
        serial = 1 + max((s["serial"] for s in bob["role_statements"]), default=0)
        statement = role_statement(owner.signing, owner.device_id, bob, "admin", serial, api.clock.now())
        return {"role": "admin", "statement": statement}

    def call(method: str, path: str, body: Any = None) -> Callable[[Any], Reply]:
        """``body`` as given, or else what ``prepare`` signed."""
        return lambda prepared: api.call(method, path, body or prepared, signer=owner)

    return [
        Route("GET /me", call("GET", "/me")),
        Route("POST /orgs", lambda _: api.call("POST", "/orgs", {"name": "Autre"}, signer=operator)),
        Route("POST /invitations", call("POST", "/invitations"), prepare=ticket),
        Route("POST /activate", activate, prepare=invite),
        Route(
            "POST /channels",
            call("POST", "/channels"),
            prepare=lambda: new_group_body(trust),
        ),
        Route("PUT /channels/{id}", call("PUT", f"/channels/{cid}", {"name": "G2"})),
        Route("PUT /channels/{id}/members/{m}", call("PUT", f"/channels/{cid}/members/{bob_id}"), add_bob),
        Route("GET /channels/{id}/messages", call("GET", f"/channels/{cid}/messages")),
        Route("PUT /members/{m}/role", call("PUT", f"/members/{bob_id}/role"), prepare=make_admin),
        Route("PUT /retention", call("PUT", "/retention", {"duration": "30d"})),
        Route("PUT /org", call("PUT", "/org", {"name": "Mairie renommée"})),
        Route("GET /plan", call("GET", "/plan")),
    ]


def test_every_route_completes_or_fails_retry_safe_at_each_write(
    people: People, api: SignedApi, faulty: FaultyStore, operator: OperatorKey
) -> None:
    outcomes: dict[str, Counter[str]] = {}
    for route in routes(people, api, operator):
        outcomes[route.name] = sweep(route, faulty)
    assert all(outcome["retried"] >= 1 for outcome in outcomes.values()), outcomes


def sweep(route: Route, faulty: FaultyStore) -> Counter[str]:
    """Fail write 1, 2, 3... of one request until a run goes through untouched; each failure
    must be retry-safe and the same request, resent, must complete."""
    outcome: Counter[str] = Counter()
    for step in range(1, 40):
        state = route.prepare()
        fault = faulty.fail("write", nth=step, error=read_timeout)
        first = route.call(state)
        faulty.heal()
        if not fault.fired:
            assert first.status in route.ok, (route.name, first)
            return outcome
        assert first.status in route.ok or retry_safe(first), (route.name, step, first)
        again = route.call(state)
        assert again.status in route.ok, (route.name, step, again)
        outcome["retried"] += 1
    raise AssertionError(f"{route.name}: more than 40 writes")


def test_a_lost_conditional_write_on_a_nonce_is_refused_not_half_done(
    people: People, api: SignedApi, faulty: FaultyStore
) -> None:
    """A conditional-check failure where none was expected (a replayed token's nonce): 401 and
    nothing written by the route; the next request goes through."""
    body = new_group_body(people.owner.trust)
    faulty.fail("put", nth=1, error=condition_failed)
    refused = api.call("POST", "/channels", body, signer=people.keys["owner"])
    assert refused.status == 401
    faulty.heal()
    assert [c["name"] for c in people.owner.channels()] == []
    assert api.call("POST", "/channels", body, signer=people.keys["owner"]).status == 201


# -- fan-out and push ---------------------------------------------------------------------------


def test_a_fan_out_chunk_delivered_twice_stores_nothing_twice(
    people: People, api: SignedApi, container: wiring.Container, faulty: FaultyStore, push: RecordingPush
) -> None:
    cid = people.owner.create_channel("group", "G")["channel_id"]
    for i in range(3):
        api.ws_connect(people.keys["owner"], f"conn-{i}")
    people.owner.send_text(cid, "hello")
    push.gone.add("conn-2")  # gone since: the chunk's only store writes forget it
    body = json.dumps({"channel_id": cid, "seq": 1, "connections": ["conn-0", "conn-1", "conn-2"]})
    before = sorted(map(str, scan_all(faulty)))
    assert container.delivery.deliver_chunk(body) == 2
    after_once = sorted(map(str, scan_all(faulty)))
    assert container.delivery.deliver_chunk(body) == 2  # SQS redelivers: at-least-once
    assert sorted(map(str, scan_all(faulty))) == after_once
    assert len(after_once) < len(before)  # the stale connection was forgotten, once
    assert stored_copies(faulty, cid) == Counter({m: 1 for m in stored_copies(faulty, cid)})


def test_a_failing_push_loses_no_message_and_skips_no_other_connection(
    people: People, api: SignedApi, faulty_push: FaultyPush, push: RecordingPush
) -> None:
    bob = people.join("bob")
    carol = people.join("carol")
    cid = people.owner.create_channel("group", "G")["channel_id"]
    for name in ("bob", "carol"):
        people.owner.add_member(cid, people.info[name]["member_id"])
        api.ws_connect(people.keys[name], f"conn-{name}")
    faulty_push.fail("conn-carol")
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "still here"})
    reply = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    assert reply.status == 201
    assert len(push.to("conn-bob", "message")) == 1
    assert [m["text"] for m in bob.read(cid)["messages"]] == ["still here"]
    assert [m["text"] for m in carol.read(cid)["messages"]] == ["still here"]


def test_a_hanging_push_holds_the_others_back_at_most_its_timeout(
    people: People, api: SignedApi, faulty_push: FaultyPush, push: RecordingPush
) -> None:
    """A connection that never reads delays the send by the push's timeout (here 1 s; the
    in-process push 5 s, API Gateway's 2 + 5 s with one retry) and no more, once."""
    bob = people.join("bob")
    people.join("carol")
    cid = people.owner.create_channel("group", "G")["channel_id"]
    for name in ("bob", "carol"):
        people.owner.add_member(cid, people.info[name]["member_id"])
        api.ws_connect(people.keys[name], f"conn-{name}")
    faulty_push.hang("conn-carol")
    started = time.monotonic()
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "not stuck"})
    reply = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    took = time.monotonic() - started
    assert reply.status == 201
    assert faulty_push.hang_seconds <= took < faulty_push.hang_seconds + 2
    assert len(push.to("conn-bob", "message")) == 1
    assert [m["text"] for m in bob.read(cid)["messages"]] == ["not stuck"]


def test_a_fan_out_that_cannot_be_queued_still_stores_the_message(
    people: People, api: SignedApi, container: wiring.Container, faulty: FaultyStore
) -> None:
    """The presence query fails after the message is stored: the sender hears 201 (online 0),
    and every member reads the message on catch-up."""
    cid = people.owner.create_channel("group", "G")["channel_id"]
    faulty.fail("query", key=(keys.channel_partition(cid), keys.CONNECTION_PREFIX))
    envelope = sealed_envelope(people.owner, cid, {"type": "text", "text": "stored anyway"})
    reply = api.call("POST", f"/channels/{cid}/messages", envelope, signer=people.keys["owner"])
    faulty.heal()
    assert reply.status == 201 and reply.body["online"] == 0
    assert [m["text"] for m in people.owner.read(cid)["messages"]] == ["stored anyway"]

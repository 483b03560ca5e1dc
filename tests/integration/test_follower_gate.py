"""The follower gate (docs/protocol.md, 16.3; issue 16, "a follower calling any member route gets
403"), walked over the app's whole route table rather than a hand-picked list: a route added
tomorrow is covered the day it is declared. Both stores, the real app, a follower's properly
signed requests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from app import app
from chalicelib.http_api import ROUTE_DOCS, RouteDoc
from tests.integration.test_followers import follow, public_tribe
from tests.support import People, SignedApi

FOLLOWER_REFUSAL = "a follower reads their public tribes, reacts and votes: nothing more"

#: What a follower may call: read and follow their tribes, react and vote, ask the town hall,
#: their own push subscription, and leave. Any change to this list is a decision to review.
OPEN_TO_FOLLOWERS = {
    ("GET", "/me"),
    ("GET", "/members"),
    ("GET", "/channels"),
    ("GET", "/channels/{channel_id}/messages"),
    ("POST", "/channels/{channel_id}/messages"),
    ("GET", "/channels/{channel_id}/roster"),
    ("GET", "/channels/{channel_id}/membership"),
    ("GET", "/channels/{channel_id}/keys"),
    ("PUT", "/channels/{channel_id}/keys"),
    ("GET", "/channels/{channel_id}/files/{blob_id}"),
    ("GET", "/channels/{channel_id}/questions"),
    ("POST", "/channels/{channel_id}/questions"),
    ("PUT", "/devices/{device_id}/push"),
    ("DELETE", "/devices/{device_id}/push"),
    ("DELETE", "/follower"),
}


def routes() -> dict[tuple[str, str], RouteDoc]:
    """Every (method, path template) Chalice routes, with the doc its ``@endpoint`` declared."""
    table: dict[tuple[str, str], RouteDoc] = {}
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            doc = ROUTE_DOCS.get(entry.view_function)
            assert doc is not None, f"{method} {path} has no @endpoint: the gate never runs on it"
            table[(method, path)] = doc
    return table


def test_the_routes_open_to_followers_are_exactly_the_expected_ones() -> None:
    opened = {route for route, doc in routes().items() if doc.followers}
    assert opened == OPEN_TO_FOLLOWERS
    assert all(routes()[route].auth == "device" for route in opened)


def test_a_follower_gets_403_on_every_member_route(people: People, api: SignedApi, tmp_path: Path) -> None:
    cid, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    owner = people.info["owner"]
    # Real ids where the route names one (the follower's own tribe, device, organisation): the
    # refusal must come from the gate, not from an id the view would not find.
    ids = {
        "channel_id": cid,
        "member_id": owner["member_id"],
        "device_id": lea.device_id,
        "org_id": owner["org_id"],
        "blob_id": "b_" + "a" * 22,
        "question_id": "q_" + "a" * 22,
        "month": "2026-12",
    }

    def concrete(template: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)

    closed = {route for route, doc in routes().items() if doc.auth == "device" and not doc.followers}
    answered: dict[tuple[str, str], Any] = {}
    for method, template in sorted(closed):
        body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
        reply = api.call(method, concrete(template), body, signer=lea.keys)
        answered[(method, template)] = (reply.status, reply.body)
    refused = {route for route, (status, body) in answered.items() if status == 403}
    wrong = {
        route: answer
        for route, answer in answered.items()
        if answer != (403, {"error": "forbidden", "message": FOLLOWER_REFUSAL})
    }
    assert wrong == {}, f"routes that did not refuse the follower at the gate: {wrong}"
    assert refused == closed and len(closed) >= 40  # the whole table, not a sample
    # The operator's routes are not the follower's either (their token is no operator key).
    for (method, template), doc in routes().items():
        if doc.auth == "operator":
            reply = api.call(method, concrete(template), {}, signer=lea.keys)
            assert reply.status == 401, (method, template, reply.body)
    # The gate refuses before anything happens: the follower still reads their tribe.
    assert [c["channel_id"] for c in lea.channels()] == [cid]

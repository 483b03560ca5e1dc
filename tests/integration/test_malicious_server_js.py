"""The malicious server's cases (test_malicious_server.py) against the web client's code.

Each case first runs as written: the attacker writes into the real store and the Python client
sends or reads. Then the web client's code (web/js/certs.js, membership.js under node) is given
what the server now answers the same device (GET /members, the roster, the membership log from
the head that device kept, the messages) and must decide the same: the same devices get a sender
key (so none of the attacker's: the Python case checked the store for that), the same refusals,
the same displayed sender, each with its warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.test_trust_compat import run_js
from tests.integration import test_guests as guest_cases
from tests.integration import test_malicious_server as cases
from tests.support import js_trust_view

group = cases.group  # the cases' fixture: a group of the owner and Bob, keys distributed
site = guest_cases.site  # the guests' fixture: the owner's group with Bob and Gus, a guest


def decide(messenger: Any, cid: str, *, fresh: bool = False, messages: bool = False) -> dict[str, Any]:
    """The web client's decision for the device behind ``messenger`` (its kept state unless fresh)."""
    trust = messenger.trust
    kept = None if fresh else trust.state.logs.get(cid)
    view = js_trust_view(messenger, cid, kept["seq"] if kept else 0)
    listed = trust.client.messages(cid)["messages"] if messages else []
    result: dict[str, Any] = run_js(
        {
            "op": "decide",
            **view,
            "kept": kept,
            "roster": trust.client.roster(cid)["devices"],
            "channel_id": cid,
            "self": messenger.device_id,
            "messages": [
                {"sender_device": m["sender_device"], "sender_member": m.get("sender_member")} for m in listed
            ],
        }
    )[0]
    return result


def sealed_by_python(people: Any, container: Any, cid: str) -> list[str]:
    """The devices the Python client sealed the current epoch's key to (the fixture's only sender)."""
    roster = people.owner.trust.client.roster(cid)["devices"]
    mine = people.keys["owner"].device_id
    return sorted(
        d["device_id"]
        for d in roster
        if d["device_id"] != mine and cases.sealed_to(container, cid, d["device_id"])
    )


SEALING_CASES: dict[str, tuple[Callable[..., None], set[str]]] = {
    "ghost device": (cases.test_a_ghost_device_under_a_real_member_gets_nothing, {"uncertified_device"}),
    "swapped box key": (cases.test_a_swapped_box_key_gets_nothing, {"uncertified_device"}),
    "unsigned addition": (cases.test_an_unsigned_member_addition_gets_nothing, {"not_in_membership"}),
    "unauthorised entry": (
        cases.test_a_log_entry_signed_by_someone_not_entitled_stops_the_replay,
        {"membership_invalid", "not_in_membership"},
    ),
    "replayed certificate": (
        cases.test_a_certificate_replayed_from_another_organisation_gets_nothing,
        {"invalid_statement"},
    ),
}


def _run(case: Callable[..., None], fixtures: dict[str, Any]) -> None:
    """Run a case of test_malicious_server.py with the fixtures it asks for."""
    names = case.__code__.co_varnames[: case.__code__.co_argcount]
    case(*(fixtures[name] for name in names))


@pytest.fixture
def attacked(group: cases.Setup, container: Any, api: Any, operator: Any) -> dict[str, Any]:
    """What the cases may ask for, the group set up."""
    return {"group": group, "container": container, "api": api, "operator": operator}


@pytest.mark.parametrize("name", list(SEALING_CASES))
def test_the_web_client_seals_to_the_same_devices_as_python(name: str, attacked: dict[str, Any]) -> None:
    case, expected = SEALING_CASES[name]
    people, _, cid = attacked["group"]
    _run(case, attacked)
    decision = decide(people.owner, cid)
    assert not decision["blocked"]
    assert decision["recipients"] == sealed_by_python(people, attacked["container"], cid)
    assert expected <= set(decision["codes"]), decision["codes"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        (cases.test_a_rolled_back_log_is_refused_and_nothing_is_sealed, "membership_rollback"),
        (cases.test_a_forked_log_is_refused, "membership_fork"),
    ],
)
def test_the_web_client_refuses_a_log_that_does_not_extend_its_own(
    case: Callable[..., None], code: str, attacked: dict[str, Any]
) -> None:
    people, _, cid = attacked["group"]
    _run(case, attacked)
    decision = decide(people.owner, cid)
    assert decision["blocked"] and decision["codes"] == [code]
    assert decision["recipients"] == [] and decision["state"] == people.owner.trust.state.logs[cid]


def test_a_fresh_web_client_does_not_trust_a_rewritten_entry(attacked: dict[str, Any]) -> None:
    people, _, cid = attacked["group"]
    _run(cases.test_a_fresh_client_does_not_trust_a_rewritten_entry, attacked)
    decision = decide(people.owner, cid, fresh=True)
    assert decision["state"]["seq"] == 0 and "membership_invalid" in decision["codes"]
    assert decision["recipients"] == []  # Bob's addition was rewritten: nobody else is in


def test_the_web_client_shows_the_certified_sender(attacked: dict[str, Any]) -> None:
    people, bob, cid = attacked["group"]
    _run(cases.test_a_forged_sender_member_is_shown_as_the_certified_one, attacked)
    decision = decide(bob, cid, messages=True)
    assert decision["senders"] == [people.info["owner"]["member_id"]]
    assert "forged_sender" in decision["codes"]


@pytest.mark.parametrize(
    "case",
    [
        guest_cases.test_a_guest_the_server_makes_admin_adds_nobody,
        guest_cases.test_signed_role_changes_across_the_guest_line_are_ignored,
    ],
)
def test_the_web_client_keeps_a_guest_a_guest(
    case: Callable[..., None], site: Any, container: Any, api: Any, operator: Any
) -> None:
    """docs/protocol.md 21.3: whatever the server's records and stored statements say, the web
    client reads the signed role as Python does and refuses the same entries."""
    people, _, cid = site
    _run(case, {"site": site, "container": container, "api": api, "operator": operator})
    decision = decide(people.owner, cid, fresh=True)
    assert decision["roles"][people.info["gus"]["member_id"]] == "guest"
    assert decision["roles"][people.info["bob"]["member_id"]] == "member"
    assert "membership_invalid" in decision["codes"]
    assert decision["recipients"] == sealed_by_python(people, container, cid)

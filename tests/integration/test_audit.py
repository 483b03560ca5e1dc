"""The administrators' audit log through the Chalice app, on both stores (issue 19, item 6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.issuing import role_statement
from bocage.client.profile import DeviceKeys, OperatorKey
from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records.audit import AuditRecords
from chalicelib.domain.audit import OPERATOR, AuditAction
from chalicelib.domain.audit import entry as audit_entry
from chalicelib.domain.organisation import Plan
from chalicelib.domain.retention import DAY
from tests.support import InProcessClient, People, SignedApi, scan_all

Owner = tuple[DeviceKeys, dict[str, Any]]


def entries(api: SignedApi, by: DeviceKeys, **query: str) -> list[dict[str, Any]]:
    reply = api.call("GET", "/audit", signer=by, query=query or None)
    assert reply.status == 200, reply.body
    return list(reply.body["entries"])


def actions(api: SignedApi, by: DeviceKeys) -> list[str]:
    """Oldest first, to read like the story the test tells."""
    return [e["action"] for e in reversed(entries(api, by, limit="200"))]


def the(api: SignedApi, by: DeviceKeys, action: str) -> dict[str, Any]:
    found = [e for e in entries(api, by, limit="200") if e["action"] == action]
    assert len(found) == 1, (action, found)
    return found[0]


def test_invitations_activations_roles_devices_and_removals_are_recorded(
    api: SignedApi, operator: OperatorKey, clock: ManualClock
) -> None:
    created = api.create_org(operator, owner_name="Maire")
    clock.advance(10)
    owner, reply = api.activate(created["activation_code"], "Maire")
    org = reply.body
    clock.advance(10)
    invitation = api.invite(owner, "Agent Dupont")
    clock.advance(10)
    agent, activated = api.activate(invitation["activation_code"], "Agent Dupont")
    agent_info = activated.body
    clock.advance(10)
    assert api.set_role(owner, agent_info["member_id"], "admin").status == 200
    clock.advance(10)
    link = api.link(agent)
    clock.advance(10)
    phone, linked = api.activate(link["activation_code"])
    assert linked.status == 201
    clock.advance(10)
    assert api.revoke(owner, phone.device_id).status == 200
    clock.advance(10)
    assert api.remove(owner, agent_info["member_id"]).status == 200

    assert actions(api, owner) == [
        "invitation.issued",  # the first owner's, by the operator
        "invitation.activated",
        "invitation.issued",
        "invitation.activated",
        "member.role_changed",
        "invitation.issued",  # the device link
        "device.linked",
        "device.revoked",
        "member.removed",  # its devices' revocations are part of it, not entries of their own
    ]
    first = entries(api, owner)[-1]
    assert first["actor"] == {"member_id": "operator", "display_name": None}
    assert first["details"]["role"] == "owner"
    issued = [e for e in entries(api, owner) if e["action"] == "invitation.issued"][1]
    assert issued["actor"] == {"member_id": org["member_id"], "display_name": "Maire"}
    assert issued["targets"] == {"member_id": agent_info["member_id"]}
    assert issued["details"] == {
        "name": "Agent Dupont",
        "role": "member",
        "grant": "member",
        "emailed": False,
    }
    role = the(api, owner, "member.role_changed")
    assert role["details"] == {"name": "Agent Dupont", "old_role": "member", "new_role": "admin"}
    assert the(api, owner, "device.linked")["actor"]["display_name"] == "Agent Dupont"
    revoked = the(api, owner, "device.revoked")
    assert revoked["targets"] == {"member_id": agent_info["member_id"], "device_id": phone.device_id}
    removed = the(api, owner, "member.removed")
    assert removed["targets"] == {"member_id": agent_info["member_id"]}
    assert removed["at"] == clock.now()


def test_settings_and_plan_changes_are_recorded(
    api: SignedApi, operator: OperatorKey, container: Any, clock: ManualClock
) -> None:
    created = api.create_org(operator, plan="pilot")
    owner, reply = api.activate(created["activation_code"], "Maire")
    client = InProcessClient(api, owner)
    for change in (
        lambda: client.set_retention("1y"),
        lambda: client.set_retention("1y"),  # no change, no entry
        lambda: client.choose_pilot_end("suspend"),
        lambda: client.set_audit_retention("2y"),
        lambda: container.orgs.set_plan(reply.body["org_id"], Plan.PRO),
    ):
        clock.advance(10)
        change()
    assert actions(api, owner)[2:] == [
        "org.retention_changed",
        "plan.pilot_end_chosen",
        "org.audit_retention_changed",
        "plan.changed",
    ]
    assert the(api, owner, "org.retention_changed")["details"] == {"old": 90, "new": 365}
    assert the(api, owner, "plan.pilot_end_chosen")["details"] == {"old": "convert", "new": "suspend"}
    assert the(api, owner, "org.audit_retention_changed")["details"] == {"old": 365, "new": 730}
    plan = the(api, owner, "plan.changed")
    assert plan["details"] == {"old": "pilot", "new": "pro"}
    assert plan["actor"]["member_id"] == "operator"


def test_channel_changes_by_admins_are_recorded_not_members_own_groups(
    people: People, api: SignedApi, clock: ManualClock
) -> None:
    owner = people.keys["owner"]
    agent = people.join("agent")
    agent_id = people.info["agent"]["member_id"]
    clock.advance(10)
    tribe = people.owner.create_channel("tribe", "Infos mairie")
    channel_id = tribe["channel_id"]
    changes: list[Callable[[], object]] = [
        lambda: people.owner.add_member(channel_id, agent_id),
        lambda: people.owner.add_member(channel_id, agent_id, "author"),
        lambda: people.owner.client.rename_channel(channel_id, "Infos de la mairie"),
        lambda: people.owner.client.set_retention("30d", channel_id),
        lambda: people.owner.remove_member(channel_id, agent_id),
    ]
    for change in changes:
        clock.advance(10)
        change()
    group = agent.create_channel("group", "Pause café")  # a member's own group: not the admins' business
    agent.client.rename_channel(group["channel_id"], "Pause thé")

    assert actions(api, owner)[-6:] == [
        "channel.created",
        "channel.member_added",
        "channel.role_changed",
        "channel.renamed",
        "channel.retention_changed",
        "channel.member_removed",
    ]
    assert the(api, owner, "channel.created")["details"]["kind"] == "tribe"
    renamed = the(api, owner, "channel.renamed")
    assert renamed["targets"] == {"channel_id": channel_id}
    assert (renamed["details"]["old"], renamed["details"]["new"]) == ("Infos mairie", "Infos de la mairie")
    assert the(api, owner, "channel.retention_changed")["details"]["new"] == 30
    added = the(api, owner, "channel.member_added")
    assert added["targets"] == {"channel_id": channel_id, "member_id": agent_id}
    assert added["details"] == {"channel_name": "Infos mairie", "role": "member"}
    assert the(api, owner, "channel.role_changed")["details"]["role"] == "author"
    assert all(e["targets"].get("channel_id") != group["channel_id"] for e in entries(api, owner))


def test_a_failed_audit_write_leaves_the_change_done_and_is_logged(
    api: SignedApi, owned_org: Owner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    owner, _ = owned_org
    _, agent = api.join(owner, "Agent")

    def lost(self: AuditRecords, entry: Any, *, expires_at: int) -> None:
        raise OSError("store unreachable")

    monkeypatch.setattr(AuditRecords, "add", lost)
    assert api.set_role(owner, agent["member_id"], "admin").status == 200
    assert api.member_row(owner, agent["member_id"])["role"] == "admin"
    failures = [r for r in caplog.records if r.getMessage() == "audit entry not written"]
    assert len(failures) == 1 and failures[0].levelname == "ERROR"
    assert failures[0].__dict__["audit_action"] == "member.role_changed"
    monkeypatch.undo()
    assert "member.role_changed" not in actions(api, owner)


def test_a_resent_role_change_is_answered_again_and_recorded_once(
    api: SignedApi, owned_org: Owner, clock: ManualClock
) -> None:
    owner, _ = owned_org
    _, agent = api.join(owner, "Agent")
    row = api.member_row(owner, agent["member_id"])
    statement = role_statement(owner.signing, owner.device_id, row, "admin", 1, clock.now())
    body = {"role": "admin", "statement": statement}
    first = api.call("PUT", f"/members/{agent['member_id']}/role", body, signer=owner)
    clock.advance(5)
    again = api.call("PUT", f"/members/{agent['member_id']}/role", body, signer=owner)
    assert first.status == again.status == 200 and again.body["role"] == "admin"
    assert len(api.member_row(owner, agent["member_id"])["role_statements"]) == 1
    assert actions(api, owner).count("member.role_changed") == 1


def test_no_secret_is_recorded(api: SignedApi, owned_org: Owner, container: Any) -> None:
    owner, _ = owned_org
    invitation = api.invite(owner, "Agent")
    keys, _ = api.activate(invitation["activation_code"], "Agent")
    rows = [r for r in scan_all(container.store) if r["pk"].startswith("AUDIT#")]
    assert len(rows) == 4
    stored = json.dumps(rows)
    for secret in (invitation["activation_code"], keys.sign_public_key, keys.box_public_key, "ticket"):
        assert secret not in stored


def test_newest_first_in_pages(api: SignedApi, owned_org: Owner, clock: ManualClock) -> None:
    owner, _ = owned_org
    for i in range(5):
        clock.advance(1)
        api.invite(owner, f"Personne {i}")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/audit", signer=owner, query=query).body
        assert len(page["entries"]) <= 3
        seen += page["entries"]
        cursor = page["cursor"]
        if not cursor:
            break
    assert len(seen) == len({e["entry_id"] for e in seen}) == 7
    assert [e["at"] for e in seen] == sorted((e["at"] for e in seen), reverse=True)
    assert [e["details"].get("name") for e in seen[:5]] == [f"Personne {i}" for i in range(4, -1, -1)]
    assert page["retention_days"] == 365 and page["retention"] == "1y"


def test_entries_of_one_second_list_in_the_order_they_were_written(
    api: SignedApi, owned_org: Owner, clock: ManualClock
) -> None:
    """The clock stands still: the role change, the retention change and the invitations share
    one second, and still list newest first as they were made (a journal that reads backwards
    within a second tells the wrong story)."""
    owner, _ = owned_org
    _, agent = api.join(owner, "Agent")
    clock.advance(10)
    client = InProcessClient(api, owner)
    assert api.set_role(owner, agent["member_id"], "admin").status == 200
    client.set_retention("1y")
    for i in range(4):
        api.invite(owner, f"Personne {i}")
    newest = entries(api, owner, limit="6")
    assert {e["at"] for e in newest} == {clock.now()}
    assert [e["action"] for e in newest] == [
        *["invitation.issued"] * 4,
        "org.retention_changed",
        "member.role_changed",
    ]
    assert [e["details"]["name"] for e in newest[:4]] == [f"Personne {i}" for i in (3, 2, 1, 0)]


def test_an_entry_written_again_keeps_its_place_in_its_second(
    api: SignedApi, owned_org: Owner, clock: ManualClock, container: Any
) -> None:
    """A re-published event (a step retried after a crash) rewrites its entry where it is: not a
    second copy, and not moved after the entries written since in that second."""
    owner, org = owned_org
    clock.advance(10)
    records = AuditRecords(container.store)
    first, second = (
        audit_entry(org["org_id"], clock.now(), OPERATOR, AuditAction.PLAN_CHANGED, {}, {"new": plan})
        for plan in ("pro", "basic")
    )
    for written in (first, second, first):
        records.add(written, expires_at=clock.now() + DAY)
    assert [e["entry_id"] for e in entries(api, owner, limit="2")] == [second.entry_id, first.entry_id]
    assert len(entries(api, owner)) == 4


def test_entries_stored_before_ranks_still_list_and_page_with_new_ones(
    api: SignedApi, owned_org: Owner, clock: ManualClock, container: Any
) -> None:
    """Entries written under the older key, ``AT#<at>#<entry id>``, list among the new ones by
    their second, and a cursor left on one (a page read before the change) reads on."""
    owner, org = owned_org
    org_id = org["org_id"]
    for name in ("Ancienne 1", "Ancienne 2"):
        clock.advance(10)
        old = audit_entry(org_id, clock.now(), OPERATOR, AuditAction.INVITATION_ISSUED, {}, {"name": name})
        container.store.put(
            {"pk": f"AUDIT#{org_id}", "sk": f"AT#{old.at:012d}#{old.entry_id}", **old.model_dump(mode="json")}
        )
    clock.advance(10)
    for name in ("Nouvelle 1", "Nouvelle 2"):
        api.invite(owner, name)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/audit", signer=owner, query=query).body
        seen += page["entries"]
        cursor = page["cursor"]
        if not cursor:
            break
    names = [e["details"].get("name") for e in seen if e["action"] == "invitation.issued"]
    assert names[:4] == ["Nouvelle 2", "Nouvelle 1", "Ancienne 2", "Ancienne 1"]
    assert len(seen) == len({e["entry_id"] for e in seen}) == 6


def test_entries_expire_after_the_organisations_audit_period(
    api: SignedApi, owned_org: Owner, clock: ManualClock, container: Any
) -> None:
    owner, _ = owned_org
    api.invite(owner, "Avant")
    client = InProcessClient(api, owner)
    assert client.set_audit_retention("30d") == {"retention_days": 30, "retention": "1m"}
    api.invite(owner, "Après")
    rows = {
        r["details"].get("name"): r["expires_at"]
        for r in scan_all(container.store)
        if r["pk"].startswith("AUDIT#") and r["action"] == "invitation.issued"
    }
    assert rows["Avant"] == rows["Après"] + 335 * DAY  # shortening erases nothing already recorded
    clock.advance(31 * DAY)
    names = [e["details"].get("name") for e in entries(api, owner)]
    assert "Après" not in names and "Avant" in names
    clock.advance(335 * DAY)
    assert entries(api, owner) == []


def test_only_owners_and_admins_read_it_only_owners_change_its_period(
    api: SignedApi, owned_org: Owner
) -> None:
    owner, _ = owned_org
    member, _ = api.join(owner, "Agent")
    admin, _ = api.join(owner, "Adjointe", "admin")
    refused = api.call("GET", "/audit", signer=member)
    assert refused.status == 403 and "owners and admins" in refused.body["message"]
    assert api.call("GET", "/audit").status == 401
    assert api.call("GET", "/audit", signer=admin).status == 200
    for who in (member, admin):
        reply = api.call("PUT", "/audit/retention", {"duration": "2y"}, signer=who)
        assert reply.status == 403 and "owner" in reply.body["message"]
    with pytest.raises(ApiError) as caught:
        InProcessClient(api, member).audit()
    assert caught.value.status == 403


def test_bad_input_is_a_clear_400(api: SignedApi, owned_org: Owner) -> None:
    owner, _ = owned_org
    for query in ({"limit": "many"}, {"cursor": "not-a-cursor"}):
        assert api.call("GET", "/audit", signer=owner, query=query).status == 400
    for duration in ("7d", "6y", "forever"):
        reply = api.call("PUT", "/audit/retention", {"duration": duration}, signer=owner)
        assert reply.status == 400, duration
    assert api.call("PUT", "/audit/retention", {}, signer=owner).status == 400


def test_another_organisation_sees_nothing_of_this_one(
    api: SignedApi, operator: OperatorKey, owned_org: Owner
) -> None:
    owner_a, _ = owned_org
    _, agent = api.join(owner_a, "Agent A")
    other = api.create_org(operator, name="Autre commune")
    owner_b, _ = api.activate(other["activation_code"], "Maire B")
    seen_by_b = entries(api, owner_b)
    assert sorted(e["action"] for e in seen_by_b) == ["invitation.activated", "invitation.issued"]
    assert agent["member_id"] not in json.dumps(seen_by_b)
    # A cursor is a position, not a key: in B's log it reads on in B's partition only.
    page_a = api.call("GET", "/audit", signer=owner_a, query={"limit": "1"}).body
    with_a_cursor = entries(api, owner_b, cursor=page_a["cursor"])
    assert agent["member_id"] not in json.dumps(with_a_cursor)
    # Another organisation's member, device or channel is a 404 wherever it is named.
    assert api.remove(owner_b, agent["member_id"]).status == 404
    assert api.set_role(owner_b, agent["member_id"], "admin").status == 404
    assert len(entries(api, owner_a)) == 4

"""The identity records on both store adapters: organisations, members and devices,
invitations and nonces read back as written, and their conditions hold."""

from __future__ import annotations

import pytest

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.invitations import InvitationRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.nonces import NonceRecords
from chalicelib.adapters.records.organisations import OrganisationRecords
from chalicelib.domain.invitation import GRACE_SECONDS, Invitation, InvitationStatus
from chalicelib.domain.organisation import Member, MemberStatus, Organisation, Plan, Role
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Item, Store
from tests.support import device_model


def _member(member_id: str, role: Role = Role.MEMBER, status: MemberStatus = MemberStatus.ACTIVE) -> Member:
    return Member(
        org_id="o_1", member_id=member_id, display_name=member_id, role=role, status=status, created_at=1
    )


def test_organisations_are_registered_and_listed_in_id_order(app_store: Store) -> None:
    orgs = OrganisationRecords(app_store)
    assert not orgs.any_exists() and list(orgs.ids()) == []
    for org_id in ("o_b", "o_a"):
        orgs.create(Organisation(org_id=org_id, name=org_id, created_at=1))
    assert orgs.any_exists() and list(orgs.ids()) == ["o_a", "o_b"]
    assert orgs.get("o_a") == Organisation(org_id="o_a", name="o_a", created_at=1)
    with pytest.raises(ConditionFailed):
        orgs.create(Organisation(org_id="o_a", name="again", created_at=2))
    assert orgs.get("o_missing") is None and orgs.update("o_missing", {"name": "x"}) is None


def test_an_organisation_stored_before_the_plan_fields_existed_can_still_change_plan(
    app_store: Store,
) -> None:
    app_store.put(keys.record(keys.org("o_old"), {"org_id": "o_old", "name": "Old", "created_at": 1}))
    orgs = OrganisationRecords(app_store)
    updated = orgs.update("o_old", {"plan": Plan.PRO, "plan_started_at": 5})
    assert updated is not None and orgs.get("o_old") == updated
    assert (updated.plan, updated.plan_started_at, updated.name) == (Plan.PRO, 5, "Old")


def test_an_organisation_update_loses_to_a_change_made_after_its_read(app_store: Store) -> None:
    orgs = OrganisationRecords(app_store)
    orgs.create(Organisation(org_id="o_1", name="Org", created_at=1))
    original_get = app_store.get

    def get_then_someone_renames(pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        item = original_get(pk, sk, consistent=consistent)
        orgs.save(Organisation(org_id="o_1", name="Renamed", created_at=1))
        return item

    app_store.get = get_then_someone_renames  # type: ignore[method-assign]
    with pytest.raises(ConditionFailed):
        orgs.update("o_1", {"retention_days": 30})
    app_store.get = original_get  # type: ignore[method-assign]
    assert orgs.get("o_1") == Organisation(org_id="o_1", name="Renamed", created_at=1)


def test_members_list_with_their_devices_and_each_member_has_only_their_own(app_store: Store) -> None:
    members = MemberRecords(app_store)
    for member_id in ("m_1", "m_10"):
        members.save(_member(member_id))
    removed = _member("m_2", status=MemberStatus.REMOVED)
    members.save(removed)
    for device in (device_model("d_a", "m_1"), device_model("d_b", "m_10"), device_model("d_c", "m_1")):
        members.save_device(device)
    assert [d.device_id for d in members.devices_of("o_1", "m_1")] == ["d_a", "d_c"]
    assert members.device("d_b") == device_model("d_b", "m_10") and members.device("d_zz") is None
    everyone, devices = members.history("o_1")
    assert [m.member_id for m in everyone] == ["m_1", "m_10", "m_2"] and removed in everyone
    assert sorted(d.device_id for d in devices) == ["d_a", "d_b", "d_c"]
    first, first_devices, cursor = members.page("o_1", cursor=None, limit=3)
    assert [m.member_id for m in first] == ["m_1"] and len(first_devices) == 2 and cursor
    rest, rest_devices, last = members.page("o_1", cursor=cursor, limit=10)
    assert [m.member_id for m in rest] == ["m_10", "m_2"] and len(rest_devices) == 1 and last is None


def test_a_member_written_from_a_stale_read_does_not_overwrite_a_removal(app_store: Store) -> None:
    members = MemberRecords(app_store)
    read = _member("m_1")
    members.save(read, if_absent=True)
    with pytest.raises(ConditionFailed):
        members.save(read, if_absent=True)
    members.save(read.model_copy(update={"status": MemberStatus.REMOVED}), unchanged_since=read)
    with pytest.raises(ConditionFailed):
        members.save(read.model_copy(update={"role": Role.ADMIN}), unchanged_since=read)
    stored = members.get("o_1", "m_1")
    assert stored is not None and (stored.status, stored.role) == (MemberStatus.REMOVED, Role.MEMBER)


def _invitation(valid_until: int) -> Invitation:
    return Invitation(
        code_hash="h_1",
        org_id="o_1",
        member_id="m_1",
        display_name="A",
        role=Role.MEMBER,
        invited_by="operator",
        created_at=1,
        valid_until=valid_until,
    )


def test_an_invitation_is_consumed_once_and_expires_after_its_grace(
    app_store: Store, clock: ManualClock
) -> None:
    invitations = InvitationRecords(app_store)
    pending = _invitation(clock.now() + 60)
    invitations.add(pending)
    with pytest.raises(ConditionFailed):
        invitations.add(pending)
    used = pending.model_copy(update={"status": InvitationStatus.USED, "used_by_device": "d_1"})
    invitations.save_if_pending(used)
    with pytest.raises(ConditionFailed):
        invitations.save_if_pending(used.model_copy(update={"used_by_device": "d_2"}))
    assert invitations.get("h_1") == used
    clock.advance(60 + GRACE_SECONDS - 1)
    assert invitations.get("h_1") is not None
    clock.advance(2)
    assert invitations.get("h_1") is None


def test_a_nonce_is_spent_once_until_it_expires(app_store: Store, clock: ManualClock) -> None:
    nonces = NonceRecords(app_store)
    keep_until = clock.now() + 30
    assert nonces.spend("d_1", "n_1", keep_until=keep_until)
    assert not nonces.spend("d_1", "n_1", keep_until=keep_until)
    assert nonces.spend("d_2", "n_1", keep_until=keep_until)  # nonces are per subject
    clock.advance(31)
    assert nonces.spend("d_1", "n_1", keep_until=clock.now() + 30)

"""Monthly billing, donations, trees and impact on both stores (SQLite and moto DynamoDB).

Organisations, members and devices are seeded through the organisation service at chosen
times (the ManualClock), so membership and device history is the real thing the job reads.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.donations import DonationRecords
from chalicelib.billing_settings import BillingSettings
from chalicelib.domain.billing import InvoiceStatus, month_end, month_start, months_between
from chalicelib.domain.ids import new_id
from chalicelib.domain.organisation import Device, MemberStatus, Plan, Role
from chalicelib.domain.principal import Principal
from chalicelib.errors import BadRequest, Conflict, Forbidden
from chalicelib.services import billing as billing_module
from chalicelib.services.billing import BillingService
from chalicelib.services.impact import ImpactService
from chalicelib.services.organisations import OrganisationService
from tests.support import scan_all


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second))


class Seed:
    """Writes history through OrganisationService, moving the clock to each event's time."""

    def __init__(self, container: Any, clock: ManualClock) -> None:
        self.orgs: OrganisationService = container.orgs
        self.clock = clock
        self.owners: dict[str, Principal] = {}

    def at(self, when: int) -> None:
        self.clock.set(when)

    def org(self, plan: Plan, when: int, name: str = "Mairie") -> str:
        """An organisation and its owner, active with one device from ``when``."""
        self.at(when)
        org_id = self.orgs.create(name, plan).org_id
        owner = self.member(org_id, when, role=Role.OWNER)
        device = self.device(org_id, owner, when)
        self.owners[org_id] = Principal(org_id, owner, device, Role.OWNER)
        return org_id

    def member(self, org_id: str, when: int, role: Role = Role.MEMBER, *, activate: bool = True) -> str:
        self.at(when)
        invited = self.orgs.add_invited_member(org_id, "Agent", role)
        if activate:
            active = invited.model_copy(update={"status": MemberStatus.ACTIVE, "activated_at": when})
            self.orgs.save_member(active, expected=invited)
        return invited.member_id

    def device(self, org_id: str, member_id: str, when: int) -> str:
        self.at(when)
        device = Device(
            device_id=new_id("d"),
            org_id=org_id,
            member_id=member_id,
            name="phone",
            sign_public_key="k",
            box_public_key="k",
            created_at=when,
        )
        self.orgs.add_device(device)
        return device.device_id

    def user(self, org_id: str, when: int) -> str:
        """A member with one device from ``when``."""
        member_id = self.member(org_id, when)
        self.device(org_id, member_id, when)
        return member_id

    def revoke(self, org_id: str, device_id: str, when: int) -> None:
        self.at(when)
        self.orgs.revoke_device(self.owners[org_id], device_id, None)  # uncertified: no statement

    def remove(self, org_id: str, member_id: str, when: int) -> None:
        self.at(when)
        self.orgs.remove_member(self.owners[org_id], member_id, None)  # never certified: no statement


@pytest.fixture
def seed(container: Any, clock: ManualClock) -> Seed:
    return Seed(container, clock)


def services(container: Any, settings: BillingSettings | None = None) -> tuple[BillingService, ImpactService]:
    s = settings or BillingSettings()
    return (
        BillingService(container.store, container.clock, container.orgs, s),
        ImpactService(container.store, container.clock, container.orgs, s),
    )


def issued(billing: BillingService, org_ids: list[str], month: str) -> dict[str, int]:
    """org -> invoice number, for the organisations that have an issued invoice."""
    numbers = {}
    for org_id in org_ids:
        invoice = billing.invoice(org_id, month)
        if invoice is not None:
            assert invoice.status is InvoiceStatus.ISSUED
            assert invoice.number is not None
            numbers[org_id] = invoice.number
    return numbers


def assert_gapless(billing: BillingService, org_ids: list[str], months: list[str]) -> None:
    """Numbers 1..N, one per invoice, and the register names exactly those invoices."""
    numbers = {(o, m): n for m in months for o, n in issued(billing, org_ids, m).items()}
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    register = billing.invoice_register()
    assert [r["number"] for r in register] == list(range(1, len(numbers) + 1))
    assert {(r["org_id"], r["month"]): r["number"] for r in register} == numbers


# -- one month by hand -------------------------------------------------------------------------------


def test_a_month_of_joins_leaves_and_revocations_matches_the_invoice_computed_by_hand(
    seed: Seed, container: Any
) -> None:
    """March 2027, a pro organisation. By hand, billable (a device active at some moment of the
    month while a member): owner, A, B, D, E, H, J = 7 users x 2.00 = 14.00; VAT 20 % = 2.80;
    total 16.80. Not billable: C (revoked before), F (joins in April), G (never activated),
    I (removed in February)."""
    jan, feb = ts(2027, 1, 10), ts(2027, 2, 1)
    org_id = seed.org(Plan.PRO, jan)
    seed.user(org_id, jan)  # A: all month
    c_member = seed.member(org_id, jan)
    c_device = seed.device(org_id, c_member, jan)
    d_member = seed.member(org_id, jan)
    d_device = seed.device(org_id, d_member, jan)
    e_member = seed.user(org_id, jan)
    seed.member(org_id, feb, activate=False)  # G: invited, never activated
    h_member = seed.user(org_id, feb)  # H: two devices, counts once
    i_member = seed.user(org_id, feb)
    seed.remove(org_id, i_member, ts(2027, 2, 10))  # I: removed in February
    seed.revoke(org_id, c_device, ts(2027, 2, 28, 23, 59, 59))  # C: revoked the second before March
    seed.revoke(org_id, d_device, ts(2027, 3, 1, 0, 0, 1))  # D: one second of March
    seed.device(org_id, h_member, ts(2027, 3, 2))
    seed.user(org_id, ts(2027, 3, 15))  # B: joins mid-month
    seed.remove(org_id, e_member, ts(2027, 3, 20))  # E: removed mid-month
    seed.user(org_id, ts(2027, 3, 31, 23, 59, 59))  # J: the month's last second
    seed.user(org_id, ts(2027, 4, 1))  # F: April
    other = seed.org(Plan.PRO, jan, name="Syndicat")  # its owner alone: 1 user
    free = seed.org(Plan.FREE, jan, name="Association")
    pilot = seed.org(Plan.PILOT, jan, name="Pilote")
    seed.at(ts(2027, 4, 1, 0, 5))

    billing, _ = services(container)
    run = billing.run_month("2027-03")

    invoice = billing.invoice(org_id, "2027-03")
    assert invoice is not None and invoice.status is InvoiceStatus.ISSUED
    assert (invoice.billable_users, invoice.subtotal_cents, invoice.vat_cents, invoice.total_cents) == (
        7,
        1400,
        280,
        1680,
    )
    assert invoice.lines[0].quantity == 7 and invoice.lines[0].unit_price_cents == 200
    assert invoice.vat_bp == 2000 and invoice.currency == "EUR"
    other_invoice = billing.invoice(other, "2027-03")
    assert other_invoice is not None and other_invoice.total_cents == 240
    assert billing.invoice(free, "2027-03") is None and billing.invoice(pilot, "2027-03") is None
    assert (run.issued, run.existing, dict(run.not_billed)) == (2, 0, {"free": 1, "pilot": 1})
    assert run.revenue_cents == 1600
    assert_gapless(billing, [org_id, other, free, pilot], ["2027-03"])
    assert invoice.reference in ("BOC-000001", "BOC-000002")
    assert [i.month for i in billing.invoices_of(org_id)] == ["2027-03"]
    # 10 % of 16.00 = 1.60, half each; no tree yet at 5.00 a tree.
    assert run.donation is not None
    assert [(p.partner, p.cents) for p in run.donation.parts] == [("Planète Urgences", 80), ("Ecotree", 80)]
    assert (run.donation.trees, run.donation.carry_out_cents) == (0, 160)


# -- idempotency ---------------------------------------------------------------------------------------


def _pro_orgs(seed: Seed, count: int, users: int = 2, when: int = ts(2027, 1, 10)) -> list[str]:
    org_ids = []
    for i in range(count):
        org_id = seed.org(Plan.PRO, when, name=f"Commune {i}")
        for _ in range(users - 1):
            seed.user(org_id, when + 3600)
        org_ids.append(org_id)
    return org_ids


def test_a_rerun_changes_nothing(seed: Seed, container: Any) -> None:
    org_ids = _pro_orgs(seed, 3)
    seed.at(ts(2027, 4, 2))
    billing, _ = services(container)
    first = billing.run_month("2027-03")
    before = sorted(map(repr, scan_all(container.store)))
    again = billing.run_month("2027-03")
    assert (first.issued, again.issued, again.existing) == (3, 0, 3)
    assert sorted(map(repr, scan_all(container.store))) == before  # not one write
    assert [i.number for i in again.invoices] == [i.number for i in first.invoices]
    assert again.donation == first.donation
    assert_gapless(billing, org_ids, ["2027-03"])


class Crash(Exception):
    """The process dying between two store calls."""


MATCHERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "draft": lambda i: i["sk"].startswith(keys.INVOICE_PREFIX) and i.get("status") == "draft",
    "claim": lambda i: i["pk"] == keys.INVOICE_NO_PK and i["sk"].startswith(keys.INVOICE_NO_PREFIX),
    "stamp": lambda i: i["sk"].startswith(keys.INVOICE_PREFIX) and i.get("status") == "issued",
    "pointer": lambda i: (i["pk"], i["sk"]) == keys.invoice_pointer(),
    "ledger": lambda i: i["pk"] == keys.DONATIONS_PK and i["sk"].startswith(keys.DONATION_PREFIX),
    "totals": lambda i: (i["pk"], i["sk"]) == keys.donation_totals(),
}


def hook_put(
    monkeypatch: pytest.MonkeyPatch,
    store: Any,
    step: str,
    occurrence: int,
    *,
    after: bool,
    action: Callable[[], None],
) -> dict[str, int]:
    """Run ``action`` at the ``occurrence``-th put of ``step``, before or after it lands, once."""
    original = store.put
    seen = {"count": 0, "fired": 0}

    def put(item: dict[str, Any], *, if_absent: bool = False, if_match: Any = None) -> None:
        if not seen["fired"] and MATCHERS[step](item):
            seen["count"] += 1
            if seen["count"] == occurrence:
                seen["fired"] = 1
                if after:
                    original(item, if_absent=if_absent, if_match=if_match)
                action()
                if after:
                    return
        original(item, if_absent=if_absent, if_match=if_match)

    monkeypatch.setattr(store, "put", put)
    return seen


@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
@pytest.mark.parametrize("step", list(MATCHERS))
def test_a_crash_anywhere_then_a_rerun_bills_everyone_once_with_gapless_numbers(
    seed: Seed, container: Any, monkeypatch: pytest.MonkeyPatch, step: str, after: bool
) -> None:
    org_ids = _pro_orgs(seed, 5)
    seed.at(ts(2027, 4, 2))
    monkeypatch.setattr(billing_module, "POINTER_STRIDE", 2)  # pointer writes mid-run too
    billing, impact = services(container, BillingSettings(trees_opening=7, tree_cost_cents=100))

    def crash() -> None:
        raise Crash(step)

    occurrence = 1 if step in ("ledger", "totals") else 3
    seen = hook_put(monkeypatch, container.store, step, occurrence, after=after, action=crash)
    with pytest.raises(Crash):
        billing.run_month("2027-03")
    assert seen["fired"]
    rerun = billing.run_month("2027-03")
    assert len(rerun.invoices) == 5
    assert_gapless(billing, org_ids, ["2027-03"])
    billing.run_month("2027-03")  # and once more, for good measure
    assert_gapless(billing, org_ids, ["2027-03"])
    # 5 x 2 users x 2.00 = 20.00; 10 % = 2.00 = 2 trees at 1.00, counted once.
    totals = DonationRecords(container.store).totals()
    assert totals is not None and (totals.months, totals.trees, totals.revenue_cents) == (1, 2, 2000)
    assert billing.trees_planted() == 9 == impact.public_impact()["trees_planted"]


@pytest.mark.parametrize(
    ("step", "after"),
    [("draft", False), ("draft", True), ("claim", True), ("stamp", False), ("ledger", True)],
)
def test_a_run_paused_while_another_runs_whole_still_yields_one_invoice_each(
    seed: Seed, container: Any, monkeypatch: pytest.MonkeyPatch, step: str, after: bool
) -> None:
    """Runner A stops between two steps at its second organisation; runner B runs the whole
    month meanwhile; then A resumes. Both finish, with the same invoices and numbers."""
    org_ids = _pro_orgs(seed, 4)
    seed.at(ts(2027, 4, 2))
    billing, _ = services(container)
    paused, resume = threading.Event(), threading.Event()
    runner_a = threading.current_thread()

    def pause() -> None:
        if threading.current_thread() is runner_a:
            paused.set()
            assert resume.wait(30)

    hook_put(monkeypatch, container.store, step, 1 if step == "ledger" else 2, after=after, action=pause)
    runner_a = threading.Thread(target=lambda: results.append(billing.run_month("2027-03")))
    results: list[Any] = []
    runner_a.start()
    assert paused.wait(30)
    b_run = billing.run_month("2027-03")  # the hook has fired: B runs straight through
    resume.set()
    runner_a.join(30)
    assert not runner_a.is_alive() and len(results) == 1
    a_run = results[0]
    assert sorted((i.org_id, i.number) for i in a_run.invoices) == sorted(
        (i.org_id, i.number) for i in b_run.invoices
    )
    assert a_run.donation == b_run.donation
    assert_gapless(billing, org_ids, ["2027-03"])
    totals = DonationRecords(container.store).totals()
    assert totals is not None and totals.months == 1


def test_a_run_stopped_at_its_deadline_is_finished_by_the_next(seed: Seed, container: Any) -> None:
    org_ids = _pro_orgs(seed, 3)
    seed.at(ts(2027, 4, 2))
    billing, _ = services(container)
    partial = billing.run_month("2027-03", deadline=time.monotonic())  # already passed
    assert not partial.complete and partial.issued == 1 and partial.donation is None
    assert billing.donation("2027-03") is None and billing.trees_planted() == 0
    rest = billing.run_previous_month(deadline=time.monotonic() + 60)
    assert rest.complete and (rest.issued, rest.existing) == (2, 1) and rest.donation is not None
    assert_gapless(billing, org_ids, ["2027-03"])


def test_concurrent_runs_issue_one_invoice_per_organisation_numbered_without_gaps(
    seed: Seed, container: Any
) -> None:
    march = _pro_orgs(seed, 6)
    seed.at(ts(2027, 4, 2))
    billing, _ = services(container)
    billing.run_month("2027-03")
    april = _pro_orgs(seed, 4, when=ts(2027, 4, 2))  # more organisations, from 2 April
    seed.at(ts(2027, 5, 1, 0, 1))
    barrier = threading.Barrier(3)
    runs: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(10)
            runs.append(billing.run_month("2027-04"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(runs) == 3
    assert sum(r.issued for r in runs) == 10  # each invoice numbered by exactly one run
    assert all(len(r.invoices) == 10 for r in runs)
    assert_gapless(billing, march + april, ["2027-03", "2027-04"])
    assert all(i.number is not None and i.number > 6 for i in billing.invoices_of(april[0]))
    totals = DonationRecords(container.store).totals()
    assert totals is not None and (totals.months, totals.applied_through) == (2, "2027-04")


# -- pilots ----------------------------------------------------------------------------------------


def test_a_pilot_that_converts_is_billed_only_from_its_end(seed: Seed, container: Any) -> None:
    start = ts(2027, 3, 10, 10)  # ends 2028-03-10 10:00
    org_id = seed.org(Plan.PILOT, start)
    seed.user(org_id, start + 3600)
    seed.user(org_id, start + 3600)
    billing, _ = services(container)

    seed.at(ts(2028, 2, 10, 10))
    status = billing.plan_status(org_id)
    assert (status["phase"], status["days_left"], status["pilot_ends_at"]) == (
        "pilot",
        29,
        ts(2028, 3, 10, 10),
    )
    assert "notice" in status and "2028-03-10" in status["notice"]
    seed.at(ts(2028, 1, 10, 10))
    assert "notice" not in billing.plan_status(org_id)  # 59 days ahead: not yet

    for month in months_between("2027-03", "2028-04"):
        seed.at(month_end(month) + 60)
        billing.run_month(month)
    free_year = months_between("2027-03", "2028-02")
    assert all(billing.invoice(org_id, m) is None for m in free_year)
    march = billing.invoice(org_id, "2028-03")
    april = billing.invoice(org_id, "2028-04")
    assert march is not None and april is not None
    # 3 users x 2.00 x 21/31 days (11-31 March; the 10th is partly free) = 4.0645 -> 4.06.
    assert (march.subtotal_cents, march.vat_cents, march.total_cents, march.number) == (406, 81, 487, 1)
    assert (march.lines[0].billed_days, march.lines[0].month_days) == (21, 31)
    assert (april.subtotal_cents, april.vat_cents, april.total_cents, april.number) == (600, 120, 720, 2)
    assert billing.sending_allowed(org_id)
    after = billing.plan_status(org_id)
    assert (after["phase"], after["pro_since"], after["days_left"]) == ("pro", ts(2028, 3, 10, 10), 0)


def test_a_pilot_that_chose_to_suspend_stops_sending_and_is_never_billed(seed: Seed, container: Any) -> None:
    start = ts(2027, 3, 10, 10)
    end = ts(2028, 3, 10, 10)
    org_id = seed.org(Plan.PILOT, start)
    member = seed.user(org_id, start + 3600)
    owner = seed.owners[org_id]
    billing, _ = services(container)
    seed.at(ts(2027, 6, 1))
    with pytest.raises(Forbidden):
        container.orgs.set_pilot_end_choice(Principal(org_id, member, "d_x", Role.MEMBER), "suspend")
    with pytest.raises(BadRequest):
        container.orgs.set_pilot_end_choice(owner, "maybe")
    assert container.orgs.set_pilot_end_choice(owner, "suspend").pilot_end_choice == "suspend"

    seed.at(end - 1)
    assert billing.sending_allowed(org_id)
    assert "suspension" in billing.plan_status(org_id)["notice"]
    seed.at(end)
    assert not billing.sending_allowed(org_id)
    assert not billing.sending_allowed(container.orgs.get(org_id), end)  # no read with the org in hand
    with pytest.raises(Forbidden) as refused:
        billing.require_sending_allowed(org_id)
    assert refused.value.code == "sending_suspended"
    status = billing.plan_status(org_id)
    assert (status["phase"], status["suspended_since"]) == ("suspended", end)
    with pytest.raises(Conflict):  # the choice is settled once the pilot has ended
        container.orgs.set_pilot_end_choice(owner, "convert")

    for month in months_between("2027-03", "2028-03"):
        seed.at(month_end(month) + 60)
        run = billing.run_month(month)
        assert run.invoices == []
    assert run.not_billed == {"suspended": 1}  # March 2028, the month the pilot ended
    assert billing.invoice_register() == []

    # The operator moves it to pro on 15 April 2028 at 10:00: billed from the 16th, pro rata.
    seed.at(ts(2028, 4, 15, 10))
    container.orgs.set_plan(org_id, Plan.PRO)
    assert billing.sending_allowed(org_id)
    seed.at(ts(2028, 5, 1, 1))
    billing.run_month("2028-04")
    invoice = billing.invoice(org_id, "2028-04")
    # 2 users x 2.00 x 15/30 = 2.00; VAT 0.40.
    assert invoice is not None and (invoice.subtotal_cents, invoice.vat_cents, invoice.number) == (200, 40, 1)


def test_only_a_pilot_before_its_end_may_choose(seed: Seed, container: Any) -> None:
    org_id = seed.org(Plan.PRO, ts(2027, 1, 1))
    with pytest.raises(Conflict):
        container.orgs.set_pilot_end_choice(seed.owners[org_id], "suspend")


# -- donations and trees ---------------------------------------------------------------------------


def test_donations_split_to_the_cent_and_carry_what_buys_no_whole_tree(seed: Seed, container: Any) -> None:
    org_id = seed.org(Plan.PRO, ts(2027, 1, 10))
    for _ in range(4):
        seed.user(org_id, ts(2027, 1, 10))  # 5 users x 2.02 = 10.10 a month
    settings = BillingSettings(price_cents=202, tree_cost_cents=150, trees_opening=1000)
    billing, _ = services(container, settings)
    seed.at(ts(2027, 4, 1, 1))
    march = billing.run_month("2027-03").donation
    assert march is not None
    assert (march.revenue_cents, march.donation_cents) == (1010, 101)
    assert [(p.partner, p.cents) for p in march.parts] == [("Planète Urgences", 51), ("Ecotree", 50)]
    assert (march.carry_in_cents, march.trees, march.carry_out_cents) == (0, 0, 101)
    seed.at(ts(2027, 5, 1, 1))
    april = billing.run_month("2027-04").donation
    assert april is not None
    assert (april.carry_in_cents, april.trees, april.carry_out_cents) == (101, 1, 52)  # 202 = 150 + 52
    assert billing.trees_planted() == 1001
    assert [d.month for d in billing.donations()] == ["2027-03", "2027-04"]

    three = BillingService(
        container.store,
        container.clock,
        container.orgs,
        BillingSettings(partners=(("A", 1), ("B", 1), ("C", 1))),
    )
    seed.at(ts(2027, 6, 1, 1))
    may = three.run_month("2027-05").donation  # 5 x 2.00 = 10.00: 1.00 in three
    assert may is not None and [p.cents for p in may.parts] == [34, 33, 33]


def test_the_trees_counter_never_double_counts(
    seed: Seed, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id = seed.org(Plan.PRO, ts(2027, 1, 10))
    for _ in range(9):
        seed.user(org_id, ts(2027, 1, 10))  # 10 users: 20.00 a month, 2.00 donated
    billing, impact = services(container, BillingSettings(tree_cost_cents=75, trees_opening=500))
    seed.at(ts(2027, 4, 1, 1))
    for _ in range(3):
        billing.run_month("2027-03")  # 200 -> 2 trees, 50 carried
    assert billing.trees_planted() == 502

    seed.at(ts(2027, 5, 1, 1))

    def crash() -> None:
        raise Crash("between the ledger and the counter")

    hook_put(monkeypatch, container.store, "ledger", 1, after=True, action=crash)
    with pytest.raises(Crash):
        billing.run_month("2027-04")
    assert billing.donation("2027-04") is not None  # the ledger landed...
    assert billing.trees_planted() == 502  # ...the counter not yet
    for _ in range(3):
        billing.run_month("2027-04")  # 200 + 50 -> 3 trees, 25 carried
    assert billing.trees_planted() == 505
    seed.at(ts(2027, 6, 1, 1))
    billing.run_previous_month()  # May: 200 + 25 -> 3 trees
    billing.run_previous_month()
    assert billing.trees_planted() == 508 == impact.public_impact()["trees_planted"]
    totals = DonationRecords(container.store).totals()
    assert totals is not None and (totals.months, totals.trees, totals.donated_cents) == (3, 8, 600)


def test_months_close_in_order_and_the_schedule_catches_up(seed: Seed, container: Any) -> None:
    org_ids = _pro_orgs(seed, 1)
    billing, _ = services(container)
    seed.at(ts(2027, 3, 15))
    with pytest.raises(BadRequest):
        billing.run_month("2027-03")  # not over yet
    with pytest.raises(BadRequest):
        billing.run_month("2027-04")  # not begun
    seed.at(ts(2027, 6, 2))
    billing.run_month("2027-03")
    with pytest.raises(Conflict, match="2027-04 first"):
        billing.run_month("2027-05")
    with pytest.raises(Conflict, match="closed"):
        billing.run_month("2027-02")
    run = billing.run_previous_month()
    assert (run.month, run.caught_up) == ("2027-05", ["2027-04"])
    assert_gapless(billing, org_ids, ["2027-03", "2027-04", "2027-05"])
    assert [i.number for i in billing.invoices_of(org_ids[0])] == [1, 2, 3]


# -- dry runs ----------------------------------------------------------------------------------------


def test_a_dry_run_records_nothing_and_shows_the_current_month_to_date(seed: Seed, container: Any) -> None:
    org_ids = _pro_orgs(seed, 2, users=3)
    billing, impact = services(container)
    seed.at(ts(2027, 4, 10))
    impact.record_message(org_ids[0], ts(2027, 4, 9), recipients=2)
    before = sorted(map(repr, scan_all(container.store)))
    current = billing.run_month("2027-04", dry_run=True)
    previous = billing.run_month("2027-03", dry_run=True)
    assert sorted(map(repr, scan_all(container.store))) == before
    assert current.month_to_date and not previous.month_to_date
    assert [i.number for i in current.invoices] == [None, None]
    assert current.revenue_cents == previous.revenue_cents == 1200
    assert current.donation is not None and current.donation.donation_cents == 120
    assert (current.messages, current.notifications) == (1, 2)
    assert billing.invoice(org_ids[0], "2027-03") is None
    real = billing.run_month("2027-03")
    assert [i.total_cents for i in real.invoices] == [i.total_cents for i in previous.invoices]


# -- impact and the pilot report ---------------------------------------------------------------------


def test_impact_counts_metadata_per_organisation_and_month(seed: Seed, container: Any) -> None:
    first = seed.org(Plan.PRO, ts(2027, 1, 10))
    second = seed.org(Plan.FREE, ts(2027, 1, 10))
    billing, impact = services(container)
    for _ in range(3):
        impact.record_message(first, ts(2027, 3, 5), recipients=10)
    impact.record_message(first, ts(2027, 4, 1), recipients=4)
    impact.record_message(second, ts(2027, 3, 31, 23, 59, 59), recipients=0)
    with pytest.raises(ValueError):
        impact.record_message(first, ts(2027, 3, 5), recipients=-1)

    mine = impact.org_impact(first)
    assert [(m["month"], m["messages"], m["notifications"]) for m in mine["months"]] == [
        ("2027-03", 3, 30),
        ("2027-04", 1, 4),
    ]
    # 30 e-mails of 4 g replaced by 30 notifications of 0.24 mg: 119 992.8 mg -> 119 993 mg.
    assert mine["months"][0]["emails_avoided"] == 30
    assert mine["months"][0]["co2e_avoided_mg"] == 119_993
    assert mine["months"][0]["co2e_avoided_g"] == "119.993"
    assert mine["totals"]["notifications"] == 34

    assert impact.public_impact()["notifications"] == 0  # nothing closed yet
    seed.at(ts(2027, 4, 1, 1))
    billing.run_month("2027-03")
    public = impact.public_impact()
    assert (public["through"], public["messages"], public["notifications"]) == ("2027-03", 4, 30)
    assert public["co2e_avoided_mg"] == 119_993 and public["trees_planted"] == 0
    assert "Berners-Lee" in public["assumptions"]["sources"]["email"]


def test_the_pilot_report_shows_each_month_of_the_pilot(seed: Seed, container: Any) -> None:
    start = ts(2027, 3, 10, 10)
    org_id = seed.org(Plan.PILOT, start, name="Commune pilote")
    seed.user(org_id, ts(2027, 3, 12))
    late = seed.member(org_id, ts(2027, 4, 20))
    seed.device(org_id, late, ts(2027, 4, 20))
    _, impact = services(container)
    impact.record_message(org_id, ts(2027, 3, 15), recipients=2)
    impact.record_message(org_id, ts(2027, 5, 3), recipients=2)
    impact.record_message(org_id, ts(2027, 5, 4), recipients=2)
    seed.at(ts(2027, 5, 20))

    report = impact.pilot_report(org_id)
    assert report["plan"]["phase"] == "pilot" and report["plan"]["pilot_ends_at"] == ts(2028, 3, 10, 10)
    rows = [(r["month"], r["active_users"], r["messages"], r["emails_avoided"]) for r in report["months"]]
    assert rows == [("2027-03", 2, 1, 2), ("2027-04", 3, 0, 0), ("2027-05", 3, 2, 4)]
    assert report["months"][2]["co2e_avoided_mg"] == 15_999  # 4 x 3 999.76 mg = 15 999.04
    assert report["totals"]["emails_avoided"] == 6 and report["totals"]["trees_funded"] == 0
    assert report["totals"]["donation_cents"] == 0  # a pilot pays nothing in its free year

    csv_text = impact.pilot_report_csv(org_id)
    lines = csv_text.splitlines()
    assert lines[0] == (
        "month,active_users,messages,notifications,emails_avoided,co2e_avoided_g,"
        "call_minutes,call_co2e_g,donation_cents,trees_funded"
    )
    assert lines[1] == "2027-03,2,1,2,2,8.000,0,0.000,0,0"  # 7 999.52 mg -> 8 000 mg
    assert lines[-1] == "total,,3,6,6,23.999,0,0.000,0,0"
    assert len(lines) == 5

    # At and after its end, the report stops at the pilot's last month.
    seed.at(ts(2028, 6, 1))
    final = impact.pilot_report(org_id)
    assert final["months"][-1]["month"] == "2028-03" and len(final["months"]) == 13


def test_invoice_periods_are_the_utc_month(seed: Seed, container: Any) -> None:
    org_ids = _pro_orgs(seed, 1)
    billing, _ = services(container)
    seed.at(ts(2027, 3, 1))
    billing.run_month("2027-02")
    invoice = billing.invoice(org_ids[0], "2027-02")
    assert invoice is not None
    # Created 10 January 2027: February is whole.
    assert (invoice.period_start, invoice.period_end) == (month_start("2027-02"), month_end("2027-02"))
    assert invoice.lines[0].month_days == 28
    assert invoice.public()["reference"] == "BOC-000001"

"""The billing records on both store adapters: invoices and their number claims, the pointer,
donation ledgers and totals, and impact counters read back as written, and their conditions
hold (the numbering protocol in chalicelib/services/billing.py relies on each of them)."""

from __future__ import annotations

import pytest

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.donations import DonationRecords
from chalicelib.adapters.records.impact import Counts, ImpactRecords
from chalicelib.adapters.records.invoices import InvoiceRecords, NumberClaim
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.billing import DonationLedger, Invoice, InvoiceStatus, Totals, compute_donation
from chalicelib.domain.organisation import Member, MemberStatus, Role
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store


def _invoice(org_id: str, month: str, claiming: int | None = 1) -> Invoice:
    return Invoice(
        org_id=org_id,
        month=month,
        claiming=claiming,
        lines=[],
        subtotal_cents=200,
        vat_bp=2000,
        vat_cents=40,
        total_cents=240,
        billable_users=1,
        period_start=0,
        period_end=1,
        computed_at=1,
    )


def _ledger(month: str) -> DonationLedger:
    return compute_donation(
        month,
        1000,
        1,
        donation_bp=1000,
        partners=[("a", 1)],
        tree_cost_cents=30,
        carry_in_cents=0,
        recorded_at=1,
    )


def test_an_invoice_is_created_once_and_replaced_only_while_it_claims_the_number_read(
    app_store: Store,
) -> None:
    invoices = InvoiceRecords(app_store)
    draft = _invoice("o_1", "2027-03", claiming=1)
    invoices.create(draft)
    with pytest.raises(ConditionFailed):
        invoices.create(_invoice("o_1", "2027-03", claiming=9))
    moved = draft.model_copy(update={"claiming": 2})
    invoices.replace_draft(moved, claiming=1)
    with pytest.raises(ConditionFailed):  # a concurrent mover read claiming 1 too: it must lose
        invoices.replace_draft(draft.model_copy(update={"claiming": 3}), claiming=1)
    issued = moved.model_copy(update={"status": InvoiceStatus.ISSUED, "number": 2})
    invoices.replace_draft(issued, claiming=2)
    with pytest.raises(ConditionFailed):  # issued: never changed again
        invoices.replace_draft(issued, claiming=2)
    assert invoices.get("o_1", "2027-03") == issued and invoices.get("o_1", "2027-04") is None


def test_an_organisations_invoices_list_oldest_first_and_nothing_else_of_its_partition(
    app_store: Store,
) -> None:
    invoices = InvoiceRecords(app_store)
    for org_id, month in (("o_1", "2027-04"), ("o_1", "2027-03"), ("o_2", "2027-03")):
        invoices.create(_invoice(org_id, month))
    ImpactRecords(app_store).add("o_1", "2027-03", messages=1, notifications=2)
    MemberRecords(app_store).save(
        Member(
            org_id="o_1",
            member_id="m_1",
            display_name="A",
            role=Role.OWNER,
            status=MemberStatus.ACTIVE,
            created_at=1,
        )
    )
    assert [(i.org_id, i.month) for i in invoices.of_org("o_1")] == [("o_1", "2027-03"), ("o_1", "2027-04")]


def test_a_number_is_claimed_by_the_first_invoice_only_and_the_register_is_in_number_order(
    app_store: Store,
) -> None:
    invoices = InvoiceRecords(app_store)
    first, second = _invoice("o_1", "2027-03"), _invoice("o_2", "2027-03")
    assert not invoices.is_claimed(10)
    assert invoices.claim(10, first, at=5).names(first)
    holder = invoices.claim(10, second, at=6)
    assert holder == NumberClaim(10, "o_1", "2027-03") and not holder.names(second)
    assert invoices.claim(10, first, at=7).names(first)  # a rerun finds its own claim
    invoices.claim(9, second, at=8)
    assert invoices.is_claimed(10)
    assert [c.public() for c in invoices.claims()] == [
        {"number": 9, "org_id": "o_2", "month": "2027-03"},
        {"number": 10, "org_id": "o_1", "month": "2027-03"},
    ]


def test_the_pointer_only_moves_from_the_value_last_read(app_store: Store) -> None:
    invoices = InvoiceRecords(app_store)
    assert invoices.pointer() is None
    invoices.move_pointer(3, previous=None, at=1)
    with pytest.raises(ConditionFailed):
        invoices.move_pointer(2, previous=None, at=2)
    with pytest.raises(ConditionFailed):
        invoices.move_pointer(5, previous=2, at=2)
    invoices.move_pointer(5, previous=3, at=2)
    assert invoices.pointer() == 5


def test_ledgers_are_recorded_once_and_found_by_month(app_store: Store) -> None:
    donations = DonationRecords(app_store)
    assert donations.first_ledger() is None and donations.latest_ledger() is None
    for month in ("2027-05", "2027-03", "2027-04"):
        donations.record_ledger(_ledger(month))
    with pytest.raises(ConditionFailed):
        donations.record_ledger(_ledger("2027-04").model_copy(update={"trees": 99}))
    assert donations.ledger("2027-04") == _ledger("2027-04") and donations.ledger("2027-06") is None
    assert [ledger.month for ledger in donations.ledgers()] == ["2027-03", "2027-04", "2027-05"]
    first, latest = donations.first_ledger(), donations.latest_ledger()
    assert first is not None and latest is not None and (first.month, latest.month) == ("2027-03", "2027-05")
    before = donations.latest_ledger(before="2027-05")
    assert before is not None and before.month == "2027-04"
    assert donations.latest_ledger(before="2027-03") is None


def test_totals_move_on_only_from_the_totals_read(app_store: Store) -> None:
    donations = DonationRecords(app_store)
    march = Totals.after(None, _ledger("2027-03"), 1)
    donations.save_totals(march, previous=None)
    with pytest.raises(ConditionFailed):  # a second run adding March again
        donations.save_totals(march, previous=None)
    april = Totals.after(march, _ledger("2027-04"), 2)
    donations.save_totals(april, previous=march)
    with pytest.raises(ConditionFailed):
        donations.save_totals(Totals.after(march, _ledger("2027-04"), 3), previous=march)
    assert donations.totals() == april and april.months == 2


def test_impact_counts_add_up_per_organisation_and_month(app_store: Store) -> None:
    impact = ImpactRecords(app_store)
    impact.add("o_1", "2027-04", messages=1, notifications=0)
    impact.add("o_1", "2027-03", messages=1, notifications=3)
    impact.add("o_1", "2027-03", messages=1, notifications=2)
    impact.add("o_2", "2027-03", messages=1, notifications=1)
    assert impact.counts("o_1", "2027-03") == Counts(messages=2, notifications=5)
    assert impact.counts("o_1", "2027-05") == Counts(0, 0)
    assert impact.by_month("o_1") == {"2027-03": Counts(2, 5), "2027-04": Counts(1, 0)}
    assert list(impact.by_month("o_1")) == ["2027-03", "2027-04"]


def test_channel_month_counters_add_to_the_older_organisation_counters(app_store: Store) -> None:
    """Sends count on their channel's STATE with the message number (no write of their own);
    a pilot's older ``ORG#o / IMPACT#`` counts still add in. Notifications: each message reaches
    the channel's other members (its ``members`` counter, read when the figures are)."""
    channels = ChannelRecords(app_store)
    app_store.put({"pk": "ORG#o_1", "sk": "CHAN#c_one", "channel_id": "c_one"})
    app_store.put({"pk": "ORG#o_1", "sk": "CHAN#c_two", "channel_id": "c_two"})
    channels.count_members("c_one", 4)
    channels.count_members("c_two", 2)
    for month in ("2027-03", "2027-03", "2027-04"):
        channels.next_seq("c_one", month)
    assert channels.next_seq("c_two", "2027-04").seq == 1
    assert channels.next_seq("c_two").seq == 2  # a number without a month counts nothing
    ImpactRecords(app_store).add("o_1", "2027-03", messages=5, notifications=7)  # counted before
    impact = ImpactRecords(app_store)
    assert impact.by_month("o_1") == {"2027-03": Counts(2 + 5, 2 * 3 + 7), "2027-04": Counts(2, 3 + 1)}
    assert impact.counts("o_1", "2027-04") == Counts(2, 4)
    assert impact.by_month("o_2") == {}
    assert channels.counters("c_one").seq == 3  # the counters model ignores the month attributes

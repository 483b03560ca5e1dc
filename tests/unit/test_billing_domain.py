"""Billing rules, pure: months, money, VAT, fair splits, plan phases, billable users, invoices."""

from __future__ import annotations

import calendar
import random

import pytest

from chalicelib.billing_settings import BillingSettings, parse_partners
from chalicelib.domain.billing import (
    DAY,
    Phase,
    SendingSuspended,
    billable_member_ids,
    billed_period,
    co2e_avoided_ug,
    compute_donation,
    compute_invoice,
    days_in_month,
    format_eur,
    format_grams,
    month_end,
    month_of,
    month_start,
    months_between,
    next_month,
    parse_month,
    percent_of,
    phase_at,
    pilot_ends_at,
    plan_status,
    previous_month,
    require_sending_allowed,
    round_half_up,
    sending_allowed,
    split_largest_remainder,
    storage_co2e_ug,
    ug_to_mg,
)
from chalicelib.domain.organisation import (
    Device,
    Member,
    MemberStatus,
    Organisation,
    PilotEndChoice,
    Plan,
    Role,
)
from chalicelib.errors import BadRequest


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second))


def org(plan: Plan, started: int, choice: PilotEndChoice = PilotEndChoice.CONVERT) -> Organisation:
    return Organisation(
        org_id="o_test", name="Mairie", plan=plan, created_at=started, pilot_end_choice=choice
    )


def member(mid: str, activated: int | None, removed: int | None = None) -> Member:
    return Member(
        org_id="o_test",
        member_id=mid,
        display_name=mid,
        role=Role.MEMBER,
        status=MemberStatus.REMOVED if removed else MemberStatus.ACTIVE,
        created_at=(activated or 0) - 100,
        activated_at=activated,
        removed_at=removed,
    )


def device(did: str, mid: str, created: int, revoked: int | None = None) -> Device:
    return Device(
        device_id=did,
        org_id="o_test",
        member_id=mid,
        name="phone",
        sign_public_key="k",
        box_public_key="k",
        created_at=created,
        revoked_at=revoked,
    )


# -- months ----------------------------------------------------------------------------------------


def test_months_are_utc_calendar_months() -> None:
    assert month_start("2027-03") == ts(2027, 3, 1)
    assert month_end("2027-03") == ts(2027, 4, 1)
    assert month_end("2027-12") == ts(2028, 1, 1)
    assert (next_month("2027-12"), previous_month("2028-01")) == ("2028-01", "2027-12")
    assert (days_in_month("2028-02"), days_in_month("2027-02"), days_in_month("2027-04")) == (29, 28, 30)
    assert month_of(ts(2027, 3, 31, 23, 59, 59)) == "2027-03"
    assert month_of(ts(2027, 4, 1)) == "2027-04"
    assert months_between("2027-11", "2028-02") == ["2027-11", "2027-12", "2028-01", "2028-02"]
    assert months_between("2028-02", "2027-11") == []


@pytest.mark.parametrize("bad", ["2027-13", "2027-00", "27-03", "2027-3", "2027-03-01", "", "1969-12"])
def test_malformed_months_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest):
        parse_month(bad)


def test_a_pilot_lasts_twelve_calendar_months_clamped_to_the_month_end() -> None:
    assert pilot_ends_at(org(Plan.PILOT, ts(2027, 3, 10, 10))) == ts(2028, 3, 10, 10)
    assert pilot_ends_at(org(Plan.PILOT, ts(2027, 2, 28))) == ts(2028, 2, 28)
    # 29 February 2028 (leap year) plus 12 months: no 29 February 2029, so the 28th.
    assert pilot_ends_at(org(Plan.PILOT, ts(2028, 2, 29, 12))) == ts(2029, 2, 28, 12)
    assert pilot_ends_at(org(Plan.PRO, ts(2027, 1, 1))) is None


# -- money -----------------------------------------------------------------------------------------


def test_round_half_up_rounds_halves_up_not_to_even() -> None:
    assert [round_half_up(n, 10) for n in (4, 5, 14, 15, 25, 35)] == [0, 1, 1, 2, 3, 4]
    assert round_half_up(0, 7) == 0
    with pytest.raises(ValueError):
        round_half_up(-1, 2)


@pytest.mark.parametrize(
    ("amount", "rate_bp", "vat"),
    [
        (1400, 2000, 280),  # exact
        (406, 2000, 81),  # 81.2 -> 81
        (1003, 2000, 201),  # 200.6 -> 201
        (1002, 550, 55),  # 5.5 %: 55.11 -> 55
        (100, 550, 6),  # 5.5 -> 6
        (50, 1000, 5),
        (5, 1000, 1),  # 0.5 -> 1
        (25, 1000, 3),  # 2.5 -> 3 (banker's rounding would give 2)
        (1, 2000, 0),  # 0.2 -> 0
    ],
)
def test_vat_and_donation_percentages_round_half_up_to_the_cent(amount: int, rate_bp: int, vat: int) -> None:
    assert percent_of(amount, rate_bp) == vat


def test_amounts_print_the_french_way() -> None:
    assert format_eur(200) == "2,00 €"
    assert format_eur(123456) == "1\u202f234,56 €"


# -- largest remainder -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (100, [("A", 1), ("B", 1)], [50, 50]),
        (101, [("A", 1), ("B", 1)], [51, 50]),  # a tie: the first listed gets the odd cent
        (101, [("B", 1), ("A", 1)], [51, 50]),
        (100, [("A", 1), ("B", 1), ("C", 1)], [34, 33, 33]),
        (1, [("A", 1), ("B", 1), ("C", 1)], [1, 0, 0]),
        (7, [("A", 2), ("B", 3)], [3, 4]),  # quotas 2.8 and 4.2: the .8 wins the last cent
        (10, [("A", 3), ("B", 7)], [3, 7]),
        (0, [("A", 1), ("B", 1)], [0, 0]),
        (2, [("A", 1), ("B", 1), ("C", 2)], [1, 0, 1]),  # quotas .5 .5 1: the tie goes to A
    ],
)
def test_largest_remainder_split(total: int, weights: list[tuple[str, int]], parts: list[int]) -> None:
    split = split_largest_remainder(total, weights)
    assert [name for name, _ in split] == [name for name, _ in weights]
    assert [cents for _, cents in split] == parts
    assert sum(parts) == total


def test_largest_remainder_parts_always_add_up_and_stay_within_a_cent_of_their_quota() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        weights = [(f"p{i}", rng.randint(1, 9)) for i in range(rng.randint(1, 6))]
        total = rng.randint(0, 100_000)
        split = split_largest_remainder(total, weights)
        assert sum(cents for _, cents in split) == total
        whole = sum(w for _, w in weights)
        for (_, weight), (_, cents) in zip(weights, split, strict=True):
            assert abs(cents * whole - total * weight) < whole  # |part - quota| < 1 cent


def test_largest_remainder_refuses_what_it_cannot_split() -> None:
    with pytest.raises(ValueError):
        split_largest_remainder(10, [])
    with pytest.raises(ValueError):
        split_largest_remainder(10, [("A", 0)])
    with pytest.raises(ValueError):
        split_largest_remainder(-1, [("A", 1)])


# -- plans -----------------------------------------------------------------------------------------


def test_pilot_phases_convert_or_suspend_exactly_at_the_end() -> None:
    start = ts(2027, 3, 10, 10)
    end = ts(2028, 3, 10, 10)
    converting = org(Plan.PILOT, start)
    stopping = org(Plan.PILOT, start, PilotEndChoice.SUSPEND)
    assert phase_at(converting, end - 1) is Phase.PILOT and phase_at(converting, end) is Phase.PRO
    assert phase_at(stopping, end - 1) is Phase.PILOT and phase_at(stopping, end) is Phase.SUSPENDED
    assert sending_allowed(stopping, end - 1) and not sending_allowed(stopping, end)
    assert sending_allowed(converting, end + 400 * DAY)
    with pytest.raises(SendingSuspended) as refused:
        require_sending_allowed(stopping, end)
    assert (refused.value.status, refused.value.code) == (403, "sending_suspended")
    require_sending_allowed(converting, end)
    assert phase_at(org(Plan.FREE, start), end) is Phase.FREE
    assert phase_at(org(Plan.PRO, start), start) is Phase.PRO


def test_plan_status_gives_the_dates_and_a_notice_from_thirty_days_before_the_end() -> None:
    start = ts(2027, 3, 10, 10)
    end = ts(2028, 3, 10, 10)
    pilot = org(Plan.PILOT, start)
    early = plan_status(pilot, end - 31 * DAY, price_cents=200)
    assert (early.phase, early.days_left, early.notice) == (Phase.PILOT, 31, None)
    assert early.public() == {
        "plan": "pilot",
        "phase": "pilot",
        "plan_started_at": start,
        "price_cents_per_user": 200,
        "pilot_ends_at": end,
        "days_left": 31,
        "pilot_end_choice": "convert",
    }
    near = plan_status(pilot, end - 30 * DAY, price_cents=200)
    assert near.days_left == 30 and near.notice is not None
    assert "2028-03-10" in near.notice and "Pro" in near.notice and "2,00 €" in near.notice
    last_second = plan_status(pilot, end - 1, price_cents=200)
    assert last_second.days_left == 1 and last_second.notice is not None
    after = plan_status(pilot, end, price_cents=200)
    assert (after.phase, after.days_left, after.pro_since, after.notice) == (Phase.PRO, 0, end, None)
    stopped = plan_status(org(Plan.PILOT, start, PilotEndChoice.SUSPEND), end - DAY, price_cents=200)
    assert stopped.notice is not None and "suspension" in stopped.notice
    suspended = plan_status(org(Plan.PILOT, start, PilotEndChoice.SUSPEND), end, price_cents=200)
    assert suspended.phase is Phase.SUSPENDED and suspended.suspended_since == end
    assert suspended.notice is not None and "suspendu" in suspended.notice


def test_a_stored_organisation_without_plan_fields_starts_its_plan_at_creation() -> None:
    stored = {"pk": "ORG#o", "sk": "META", "org_id": "o", "name": "Old", "plan": "pilot", "created_at": 100}
    old = Organisation.model_validate(stored)
    assert (old.plan_start, old.pilot_end_choice) == (100, PilotEndChoice.CONVERT)


# -- billable users --------------------------------------------------------------------------------


def test_billable_users_follow_device_and_membership_history() -> None:
    start, end = month_start("2027-03"), month_end("2027-03")
    before = ts(2027, 2, 1)
    members = [
        member("m_all_month", before),
        member("m_joined_mid", ts(2027, 3, 15)),
        member("m_revoked_before", before),
        member("m_revoked_first_second", before),
        member("m_removed_mid", before, removed=ts(2027, 3, 20)),
        member("m_joined_after", end),
        member("m_invited", None),
        member("m_two_devices", before),
        member("m_removed_before", before, removed=ts(2027, 2, 10)),
        member("m_last_second", ts(2027, 3, 31, 23, 59, 59)),
        member("m_unrevoked_after_removal", before, removed=ts(2027, 2, 20)),
        member("m_revoked_at_month_start", before),
    ]
    devices = [
        device("d1", "m_all_month", before),
        device("d2", "m_joined_mid", ts(2027, 3, 15)),
        device("d3", "m_revoked_before", before, revoked=ts(2027, 2, 28, 23, 59, 59)),
        device("d4", "m_revoked_first_second", before, revoked=ts(2027, 3, 1, 0, 0, 1)),
        device("d5", "m_removed_mid", before, revoked=ts(2027, 3, 20)),
        device("d6", "m_joined_after", end),
        device("d7a", "m_two_devices", before),
        device("d7b", "m_two_devices", ts(2027, 3, 2)),
        device("d8", "m_removed_before", before, revoked=ts(2027, 2, 10)),
        device("d9", "m_last_second", ts(2027, 3, 31, 23, 59, 59)),
        device("d10", "m_unrevoked_after_removal", before),  # a crash left it unrevoked
        device("d11", "m_revoked_at_month_start", before, revoked=start),
        device("d_stray", "m_not_a_member", before),
    ]
    assert billable_member_ids(members, devices, start, end) == sorted(
        [
            "m_all_month",
            "m_joined_mid",
            "m_revoked_first_second",
            "m_removed_mid",
            "m_two_devices",
            "m_last_second",
        ]
    )


# -- invoices --------------------------------------------------------------------------------------


def test_full_month_invoice_by_hand() -> None:
    pro = org(Plan.PRO, ts(2027, 1, 5, 9))
    members = [member(f"m{i}", ts(2027, 1, 6)) for i in range(7)]
    devices = [device(f"d{i}", f"m{i}", ts(2027, 1, 6)) for i in range(7)]
    invoice = compute_invoice(pro, "2027-03", members, devices, price_cents=200, vat_bp=2000, computed_at=1)
    assert invoice is not None
    assert (invoice.billable_users, invoice.subtotal_cents, invoice.vat_cents, invoice.total_cents) == (
        7,
        1400,
        280,
        1680,
    )
    assert invoice.lines[0].billed_days == invoice.lines[0].month_days == 31
    assert "prorata" not in invoice.lines[0].description
    assert (invoice.period_start, invoice.period_end) == (month_start("2027-03"), month_end("2027-03"))


def test_a_converting_pilot_pays_only_the_whole_days_after_its_end() -> None:
    pilot = org(Plan.PILOT, ts(2027, 3, 10, 10))  # ends 2028-03-10 10:00: the 10th is still free
    members = [member(f"m{i}", ts(2027, 3, 10, 11)) for i in range(3)]
    devices = [device(f"d{i}", f"m{i}", ts(2027, 3, 10, 11)) for i in range(3)]
    for month in months_between("2027-03", "2028-02"):
        assert (
            compute_invoice(pilot, month, members, devices, price_cents=200, vat_bp=2000, computed_at=1)
            is None
        )
    period = billed_period(pilot, "2028-03")
    assert period is not None and (period.start, period.billed_days, period.month_days) == (
        ts(2028, 3, 11),
        21,
        31,
    )
    invoice = compute_invoice(pilot, "2028-03", members, devices, price_cents=200, vat_bp=2000, computed_at=1)
    assert invoice is not None
    # 3 users x 200 cents x 21/31 = 406.45 -> 406; VAT 81.2 -> 81.
    assert (invoice.subtotal_cents, invoice.vat_cents, invoice.total_cents) == (406, 81, 487)
    assert "21/31" in invoice.lines[0].description
    # A pilot starting at midnight converts at midnight: that day is billed.
    at_midnight = billed_period(org(Plan.PILOT, ts(2027, 3, 10)), "2028-03")
    assert at_midnight is not None and at_midnight.billed_days == 22


def test_nothing_is_owed_by_free_suspended_or_empty_organisations() -> None:
    members = [member("m", ts(2027, 1, 1))]
    devices = [device("d", "m", ts(2027, 1, 1))]
    args = {"price_cents": 200, "vat_bp": 2000, "computed_at": 1}
    assert compute_invoice(org(Plan.FREE, ts(2026, 1, 1)), "2027-03", members, devices, **args) is None
    stopped = org(Plan.PILOT, ts(2026, 1, 1), PilotEndChoice.SUSPEND)
    assert compute_invoice(stopped, "2027-03", members, devices, **args) is None
    assert compute_invoice(org(Plan.PRO, ts(2026, 1, 1)), "2027-03", [], [], **args) is None
    # Moved to pro at 10:00 on the last day: no whole day as pro in that month.
    late = org(Plan.PRO, ts(2027, 3, 31, 10))
    assert compute_invoice(late, "2027-03", members, devices, **args) is None


# -- donations and trees ---------------------------------------------------------------------------


def test_donation_is_split_to_the_cent_and_trees_carry_the_remainder() -> None:
    partners = parse_partners("Planète Urgences:1,Ecotree:1")
    ledger = compute_donation(
        "2027-03",
        1010,
        2,
        donation_bp=1000,
        partners=partners,
        tree_cost_cents=500,
        carry_in_cents=450,
        recorded_at=1,
    )
    assert ledger.donation_cents == 101
    assert [(p.partner, p.cents) for p in ledger.parts] == [("Planète Urgences", 51), ("Ecotree", 50)]
    assert (ledger.trees, ledger.carry_out_cents) == (1, 51)  # (101 + 450) = 1 x 500 + 51
    three = compute_donation(
        "2027-03",
        1000,
        1,
        donation_bp=1000,
        partners=(("A", 1), ("B", 1), ("C", 1)),
        tree_cost_cents=30,
        carry_in_cents=0,
        recorded_at=1,
    )
    assert [p.cents for p in three.parts] == [34, 33, 33]
    assert (three.trees, three.carry_out_cents) == (3, 10)


# -- impact ----------------------------------------------------------------------------------------


def test_co2e_is_integer_micrograms_computed_from_counts() -> None:
    avoided = co2e_avoided_ug(30, ug_per_email=4_000_000, ug_per_notification=240)
    assert avoided == 30 * 3_999_760
    assert ug_to_mg(avoided) == 119_993  # 119 992.8 mg, rounded half up
    assert format_grams(119_993) == "119.993"
    assert co2e_avoided_ug(5, ug_per_email=100, ug_per_notification=300) == 0  # never negative


def test_keeping_files_costs_co2e_per_gigabyte_and_month() -> None:
    factor = BillingSettings().co2e_ug_per_gb_month
    assert factor == 808_000  # 0.65 Wh/TBh x 3 copies x PUE 1.135 x 730 h = 1.616 Wh/GB-month, x 0.5 kg/kWh
    assert storage_co2e_ug(10**9, ug_per_gb_month=factor) == 808_000
    assert storage_co2e_ug(2_500_000_000, ug_per_gb_month=factor) == 2_020_000
    assert storage_co2e_ug(1_000, ug_per_gb_month=factor) == 1  # 0.808 ug, rounded half up
    assert storage_co2e_ug(0, ug_per_gb_month=factor) == 0
    env = {"BOCAGE_CO2E_MG_PER_GB_MONTH": "500"}
    assert BillingSettings.from_env(env).co2e_ug_per_gb_month == 500_000


# -- settings --------------------------------------------------------------------------------------


def test_billing_settings_defaults_and_environment() -> None:
    default = BillingSettings.from_env({})
    assert default == BillingSettings()
    assert (default.price_cents, default.vat_bp, default.donation_bp) == (200, 2000, 1000)
    assert default.partners == (("Planète Urgences", 1), ("Ecotree", 1))
    assert (default.tree_cost_cents, default.trees_opening) == (500, 0)
    assert (default.co2e_ug_per_notification, default.co2e_ug_per_email) == (240, 4_000_000)
    custom = BillingSettings.from_env(
        {
            "BOCAGE_PRICE_CENTS": "250",
            "BOCAGE_VAT_PERCENT": "5,5",
            "BOCAGE_DONATION_PERCENT": "12.5",
            "BOCAGE_PARTNERS": "Planète Urgences:2, Ecotree:1, Reforest",
            "BOCAGE_TREE_COST_CENTS": "300",
            "BOCAGE_TREES_OPENING": "1200",
            "BOCAGE_CO2E_MG_PER_NOTIFICATION": "0.5",
            "BOCAGE_CO2E_MG_PER_EMAIL": "300",
        }
    )
    assert (custom.price_cents, custom.vat_bp, custom.donation_bp) == (250, 550, 1250)
    assert custom.partners == (("Planète Urgences", 2), ("Ecotree", 1), ("Reforest", 1))
    assert (custom.tree_cost_cents, custom.trees_opening) == (300, 1200)
    assert (custom.co2e_ug_per_notification, custom.co2e_ug_per_email) == (500, 300_000)


@pytest.mark.parametrize(
    "env",
    [
        {"BOCAGE_PRICE_CENTS": "2.5"},
        {"BOCAGE_PRICE_CENTS": "-1"},
        {"BOCAGE_VAT_PERCENT": "101"},
        {"BOCAGE_VAT_PERCENT": "vingt"},
        {"BOCAGE_TREE_COST_CENTS": "0"},
        {"BOCAGE_PARTNERS": "A:0"},
        {"BOCAGE_PARTNERS": "A:1,A:2"},
        {"BOCAGE_PARTNERS": ":1"},
        {"BOCAGE_CO2E_MG_PER_EMAIL": "-4"},
    ],
)
def test_billing_settings_refuse_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        BillingSettings.from_env(env)

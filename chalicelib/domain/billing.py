"""Billing rules, pure: calendar months, money, VAT, fair splits, plan phases, invoices, donations.

Conventions:

- **Money** is integer cents (EUR). **Rates** are integer basis points (1 % = 100 bp), so a
  5.5 % VAT rate is 550. **Rounding** is half up (0.5 cent becomes 1 cent), done once per amount
  on exact integers: ``round_half_up(n, d)`` is the nearest integer to n/d, halves going up.
  No float is ever involved.
- **Months** are UTC calendar months written ``YYYY-MM``; a month is the half-open interval
  ``[month_start, month_end)`` of epoch seconds.
- **Plans** (``Organisation.plan``): ``free`` is never billed; ``pilot`` is free for 12 calendar
  months from ``plan_start`` (same day and time, clamped to the month's last day), then becomes
  ``pro`` or is suspended, as its admins chose in advance (``pilot_end_choice``). That phase is
  computed from the stored fields and the time, never written by a job, so it changes exactly
  on time with nothing to schedule. ``pro`` is billed per billable user per month.
- **Partial months** (a pilot converting, or a plan moved to ``pro`` mid-month): only whole UTC
  days spent as ``pro`` are billed, pro rata: ``users x price x billed_days / days_in_month``,
  rounded half up once for the line. The day of the change itself is free (it is partly free
  time), so a customer never pays for a day of a free period. Users are counted over the billed
  days only.
- **Plan history** is not kept: only the current plan and its start. A month is billed by the
  plan in force when the job runs (on the 1st), from that plan's start. Moving an organisation
  *away* from ``pro`` mid-month therefore forgoes that month's pro days: change plans on the 1st,
  after the job has run.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.organisation import Device, Member, Organisation, PilotEndChoice, Plan
from chalicelib.errors import BadRequest, Forbidden

DAY = 86_400
PILOT_MONTHS = 12  # a pilot's free period, in calendar months
CURRENCY = "EUR"
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


# -- months ----------------------------------------------------------------------------------------


def parse_month(text: str) -> str:
    """Validate ``YYYY-MM`` (400 Bad Request otherwise) and return it."""
    if not isinstance(text, str) or not _MONTH.fullmatch(text) or text < "1970-01":
        raise BadRequest("a month is written YYYY-MM, e.g. 2026-11")
    return text


def _ym(month: str) -> tuple[int, int]:
    year, mon = parse_month(month).split("-")
    return int(year), int(mon)


def month_of(at: int) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m")


def month_start(month: str) -> int:
    year, mon = _ym(month)
    return calendar.timegm((year, mon, 1, 0, 0, 0))


def next_month(month: str) -> str:
    year, mon = _ym(month)
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def previous_month(month: str) -> str:
    year, mon = _ym(month)
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


def month_end(month: str) -> int:
    """The first second after the month (exclusive end)."""
    return month_start(next_month(month))


def days_in_month(month: str) -> int:
    return calendar.monthrange(*_ym(month))[1]


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included (empty if last < first)."""
    months: list[str] = []
    month = parse_month(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def add_months(at: int, count: int) -> int:
    """The same UTC day and time ``count`` months later; a day the target month lacks clamps to
    its last day (31 March plus 11 months is 29 February in a leap year, 28th otherwise)."""
    moment = dt.datetime.fromtimestamp(at, tz=dt.UTC)
    index = moment.year * 12 + moment.month - 1 + count
    year, mon = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, mon + 1)[1])
    return int(moment.replace(year=year, month=mon + 1, day=day).timestamp())


def day_ceiling(at: int) -> int:
    """The first UTC midnight at or after ``at`` (epoch days are UTC days: no leap seconds)."""
    return -(-at // DAY) * DAY


def iso_date(at: int) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%d")


# -- money -----------------------------------------------------------------------------------------


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves up (both non-negative)."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def percent_of(amount_cents: int, rate_bp: int) -> int:
    """``rate_bp`` basis points of an amount, rounded half up to the cent (VAT, donations)."""
    return round_half_up(amount_cents * rate_bp, 10_000)


def format_eur(cents: int) -> str:
    """French notation: ``2,00 €``, ``1 234,56 €``."""
    euros, rest = divmod(cents, 100)
    return f"{euros:,}".replace(",", "\u202f") + f",{rest:02d} €"


def split_largest_remainder(total: int, weights: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Split ``total`` cents by weight so the parts add up to ``total`` exactly (Hamilton's method).

    Each name gets the floor of its exact quota ``total x weight / sum of weights``; the cents
    left over go one each to the largest remainders, ties to the name listed first. So every
    part is its quota rounded down or up, never further off than one cent.
    """
    if total < 0:
        raise ValueError("cannot split a negative amount")
    if not weights or any(weight <= 0 for _, weight in weights):
        raise ValueError("every share needs a positive weight")
    whole = sum(weight for _, weight in weights)
    floors = [(total * weight) // whole for _, weight in weights]
    remainders = [(total * weight) % whole for _, weight in weights]
    left = total - sum(floors)
    # Largest remainder first; on equal remainders, the earlier name first (stable sort).
    order = sorted(range(len(weights)), key=lambda i: -remainders[i])
    for i in order[:left]:
        floors[i] += 1
    return [(name, part) for (name, _), part in zip(weights, floors, strict=True)]


# -- plans -----------------------------------------------------------------------------------------


class Phase(StrEnum):
    """Where an organisation stands at a moment, derived from its plan fields and the time."""

    FREE = "free"
    PILOT = "pilot"  # within its free year
    PRO = "pro"  # billed: a pro plan, or a pilot that converted at its end
    SUSPENDED = "suspended"  # a pilot that chose to stop at its end: sending refused, not billed


class SendingSuspended(Forbidden):
    code = "sending_suspended"


def pilot_ends_at(org: Organisation) -> int | None:
    if org.plan is not Plan.PILOT:
        return None
    return add_months(org.plan_start, PILOT_MONTHS)


def pro_since(org: Organisation) -> int | None:
    """When the organisation became billable (``pro``), or None if it is not and will not be."""
    if org.plan is Plan.PRO:
        return org.plan_start
    if org.plan is Plan.PILOT and org.pilot_end_choice is PilotEndChoice.CONVERT:
        return pilot_ends_at(org)
    return None


def phase_at(org: Organisation, at: int) -> Phase:
    if org.plan is Plan.FREE:
        return Phase.FREE
    if org.plan is Plan.PRO:
        return Phase.PRO
    ends = pilot_ends_at(org)
    assert ends is not None
    if at < ends:
        return Phase.PILOT
    return Phase.PRO if org.pilot_end_choice is PilotEndChoice.CONVERT else Phase.SUSPENDED


def sending_allowed(org: Organisation, at: int) -> bool:
    """False only for a pilot past its end that chose ``suspend``: what messaging checks."""
    return phase_at(org, at) is not Phase.SUSPENDED


def require_sending_allowed(org: Organisation, at: int) -> None:
    if not sending_allowed(org, at):
        raise SendingSuspended(
            "sending is suspended: this organisation's pilot has ended; ask the operator to move it to pro"
        )


@dataclass(frozen=True)
class PlanStatus:
    """What admins see of their plan: the phase, its dates, and a notice near a pilot's end."""

    plan: Plan
    phase: Phase
    plan_started_at: int
    pilot_end_choice: PilotEndChoice
    price_cents: int
    pilot_ends_at: int | None = None
    days_left: int | None = None
    pro_since: int | None = None
    suspended_since: int | None = None
    notice: str | None = None

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "plan": self.plan.value,
            "phase": self.phase.value,
            "plan_started_at": self.plan_started_at,
            "price_cents_per_user": self.price_cents,
        }
        if self.plan is Plan.PILOT:
            body.update(
                pilot_ends_at=self.pilot_ends_at,
                days_left=self.days_left,
                pilot_end_choice=self.pilot_end_choice.value,
            )
        for name in ("pro_since", "suspended_since", "notice"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body


def plan_status(org: Organisation, at: int, *, price_cents: int, notice_days: int = 30) -> PlanStatus:
    """The plan at ``at``. ``days_left`` counts started days to a pilot's end (0 once ended);
    ``notice`` is set from ``notice_days`` days before the end, and while suspended."""
    phase = phase_at(org, at)
    ends = pilot_ends_at(org)
    since = pro_since(org)
    days_left = None if ends is None else max(0, -(-(ends - at) // DAY))
    notice = None
    if phase is Phase.PILOT and ends is not None and days_left is not None and days_left <= notice_days:
        then = (
            f"passage à l'offre Pro, {format_eur(price_cents)} HT par utilisateur actif et par mois"
            if org.pilot_end_choice is PilotEndChoice.CONVERT
            else "suspension de l'envoi de messages"
        )
        notice = (
            f"Votre période pilote se termine le {iso_date(ends)} (dans {days_left} jour"
            f"{'s' if days_left > 1 else ''}). Ensuite : {then}. Les administrateurs peuvent "
            "changer ce choix jusqu'à cette date."
        )
    elif phase is Phase.SUSPENDED and ends is not None:
        notice = f"La période pilote s'est terminée le {iso_date(ends)} : l'envoi de messages est suspendu."
    return PlanStatus(
        plan=org.plan,
        phase=phase,
        plan_started_at=org.plan_start,
        pilot_end_choice=org.pilot_end_choice,
        price_cents=price_cents,
        pilot_ends_at=ends,
        days_left=days_left,
        pro_since=since if since is not None and since <= at else None,
        suspended_since=ends if phase is Phase.SUSPENDED else None,
        notice=notice,
    )


# -- billable users --------------------------------------------------------------------------------


def _overlaps(start: int, end: int | None, period_start: int, period_end: int) -> bool:
    """Does the half-open interval [start, end) (end None: still open) meet [period_start, period_end)?"""
    if end is not None and end <= start:
        return False  # empty: e.g. a device revoked before its member was activated
    return start < period_end and (end is None or end > period_start)


def billable_member_ids(
    members: Iterable[Member], devices: Iterable[Device], period_start: int, period_end: int
) -> list[str]:
    """Members billable over ``[period_start, period_end)``, sorted by id.

    **A member is billable for a period if at least one of their devices was active at some
    moment of it while they were a member.** A device is active from its ``created_at`` until
    its ``revoked_at`` (excluded; never revoked: still active); a member belongs from
    ``activated_at`` (``created_at`` if unset) until ``removed_at`` (excluded). Both come from
    the records history keeps (removing a member or revoking a device stamps the time and keeps
    the record), so the count is the same whenever the job runs, and a member who joined on the
    31st or left on the 1st counts for that month. Counting the membership interval too means a
    device left unrevoked by a crash during a removal is not billed past the removal. A member
    with several devices counts once; an invited member who never activated a device, never.
    """
    membership: dict[str, tuple[int, int | None]] = {}
    for member in members:
        start = member.activated_at if member.activated_at is not None else member.created_at
        membership[member.member_id] = (start, member.removed_at)
    billable: set[str] = set()
    for device in devices:
        if device.member_id in billable or device.member_id not in membership:
            continue
        joined, left = membership[device.member_id]
        start = max(device.created_at, joined)
        ends = [t for t in (device.revoked_at, left) if t is not None]
        end = min(ends) if ends else None
        if _overlaps(start, end, period_start, period_end):
            billable.add(device.member_id)
    return sorted(billable)


# -- invoices --------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class InvoiceStatus(StrEnum):
    DRAFT = "draft"  # computed and stored, its number still being claimed
    ISSUED = "issued"  # numbered: final, never recomputed


class InvoiceLine(_Model):
    description: str
    quantity: int  # billable users
    unit_price_cents: int  # per user for a whole month, before tax
    billed_days: int
    month_days: int
    amount_cents: int  # before tax


class Invoice(_Model):
    org_id: str
    month: str
    status: InvoiceStatus = InvoiceStatus.DRAFT
    number: int | None = None
    claiming: int | None = None  # the number this draft is claiming (see services/billing.py)
    org_name: str = ""
    lines: list[InvoiceLine]
    subtotal_cents: int
    vat_bp: int
    vat_cents: int
    total_cents: int
    currency: str = CURRENCY
    billable_users: int
    period_start: int
    period_end: int
    computed_at: int
    issued_at: int | None = None

    @property
    def reference(self) -> str | None:
        return None if self.number is None else invoice_reference(self.number)

    def public(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude_none=True, exclude={"claiming"})
        if self.number is not None:
            body["reference"] = self.reference
        return body


def invoice_reference(number: int) -> str:
    return f"BOC-{number:06d}"


@dataclass(frozen=True)
class BilledPeriod:
    start: int  # first billed midnight
    end: int  # the month's end
    billed_days: int
    month_days: int


def billed_period(org: Organisation, month: str) -> BilledPeriod | None:
    """The whole UTC days of ``month`` the organisation spends as ``pro`` (None: none at all)."""
    since = pro_since(org)
    start, end = month_start(month), month_end(month)
    if since is None or since >= end:
        return None
    first = max(start, day_ceiling(since))
    if first >= end:
        return None
    return BilledPeriod(first, end, (end - first) // DAY, days_in_month(month))


def compute_invoice(
    org: Organisation,
    month: str,
    members: Iterable[Member],
    devices: Iterable[Device],
    *,
    price_cents: int,
    vat_bp: int,
    computed_at: int,
) -> Invoice | None:
    """The month's invoice as a draft, or None when nothing is owed (free, pilot in its free
    year, suspended, or no billable user): a zero invoice would spend a number for nothing.

    VAT is computed once on the total before tax, rounded half up to the cent.
    """
    period = billed_period(org, month)
    if period is None or price_cents <= 0:
        return None
    users = billable_member_ids(members, devices, period.start, period.end)
    if not users:
        return None
    amount = round_half_up(len(users) * price_cents * period.billed_days, period.month_days)
    partial = period.billed_days < period.month_days
    description = (
        f"Bocage Pro, {month} : {len(users)} utilisateur{'s' if len(users) > 1 else ''} "
        f"actif{'s' if len(users) > 1 else ''} x {format_eur(price_cents)} HT par mois"
        + (f", au prorata de {period.billed_days}/{period.month_days} jours" if partial else "")
    )
    line = InvoiceLine(
        description=description,
        quantity=len(users),
        unit_price_cents=price_cents,
        billed_days=period.billed_days,
        month_days=period.month_days,
        amount_cents=amount,
    )
    subtotal = line.amount_cents
    vat = percent_of(subtotal, vat_bp)
    return Invoice(
        org_id=org.org_id,
        month=month,
        org_name=org.name,
        lines=[line],
        subtotal_cents=subtotal,
        vat_bp=vat_bp,
        vat_cents=vat,
        total_cents=subtotal + vat,
        billable_users=len(users),
        period_start=period.start,
        period_end=period.end,
        computed_at=computed_at,
    )


# -- donations and trees ---------------------------------------------------------------------------


class DonationPart(_Model):
    partner: str
    weight: int
    cents: int


class DonationLedger(_Model):
    """One month's donation, recorded once (put if absent) when the month's invoices are issued.

    The donation is ``donation_bp`` of the revenue before tax, rounded half up, split among the
    partners by largest remainder. Trees funded are whole: ``(donation + carry_in) // tree_cost``;
    the rest is carried to the next month's ledger. ``messages`` and ``notifications`` roll up
    the month's impact counters of every organisation.
    """

    month: str
    revenue_cents: int
    invoices: int
    donation_bp: int
    donation_cents: int
    parts: list[DonationPart]
    tree_cost_cents: int
    carry_in_cents: int
    trees: int
    carry_out_cents: int
    messages: int = 0
    notifications: int = 0
    recorded_at: int

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def compute_donation(
    month: str,
    revenue_cents: int,
    invoices: int,
    *,
    donation_bp: int,
    partners: Sequence[tuple[str, int]],
    tree_cost_cents: int,
    carry_in_cents: int,
    messages: int = 0,
    notifications: int = 0,
    recorded_at: int,
) -> DonationLedger:
    donation = percent_of(revenue_cents, donation_bp)
    parts = split_largest_remainder(donation, partners)
    weights = dict(partners)
    trees, carry_out = divmod(donation + carry_in_cents, tree_cost_cents)
    return DonationLedger(
        month=month,
        revenue_cents=revenue_cents,
        invoices=invoices,
        donation_bp=donation_bp,
        donation_cents=donation,
        parts=[DonationPart(partner=name, weight=weights[name], cents=cents) for name, cents in parts],
        tree_cost_cents=tree_cost_cents,
        carry_in_cents=carry_in_cents,
        trees=trees,
        carry_out_cents=carry_out,
        messages=messages,
        notifications=notifications,
        recorded_at=recorded_at,
    )


class Totals(_Model):
    """Running totals over every ledger applied so far, in month order (``applied_through``).

    Moved on by one conditional put per ledger (``if_match`` on ``applied_through``), so each
    month's trees are counted exactly once, whatever the reruns, crashes and concurrent runs.
    """

    applied_through: str
    months: int = 0
    trees: int = 0
    donated_cents: int = 0
    revenue_cents: int = 0
    messages: int = 0
    notifications: int = 0
    updated_at: int = 0

    @classmethod
    def after(cls, before: Totals | None, ledger: DonationLedger, at: int) -> Totals:
        base = before or cls(applied_through=ledger.month)
        return cls(
            applied_through=ledger.month,
            months=base.months + 1,
            trees=base.trees + ledger.trees,
            donated_cents=base.donated_cents + ledger.donation_cents,
            revenue_cents=base.revenue_cents + ledger.revenue_cents,
            messages=base.messages + ledger.messages,
            notifications=base.notifications + ledger.notifications,
            updated_at=at,
        )


# -- impact ----------------------------------------------------------------------------------------


def co2e_avoided_ug(notifications: int, *, ug_per_email: int, ug_per_notification: int) -> int:
    """Micrograms of CO2e avoided: each notification replaced one e-mail to one recipient."""
    return notifications * max(0, ug_per_email - ug_per_notification)


def storage_co2e_ug(bytes_stored: int, *, ug_per_gb_month: int) -> int:
    """Micrograms of CO2e a month for keeping ``bytes_stored`` bytes (GB: 10^9 bytes)."""
    return round_half_up(bytes_stored * ug_per_gb_month, 10**9)


def ug_to_mg(micrograms: int) -> int:
    return round_half_up(micrograms, 1000)


def format_grams(milligrams: int) -> str:
    """``12345`` mg as ``"12.345"`` g (a decimal string: exact, no float)."""
    grams, rest = divmod(milligrams, 1000)
    return f"{grams}.{rest:03d}"


def invoice_csv(invoice: Invoice) -> str:
    """An invoice as CSV (one row a line, then the totals), amounts in cents and in euros."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    reference = invoice.reference or "draft"
    writer.writerow(
        ["invoice", "month", "description", "quantity", "unit_price_cents", "amount_cents", "amount_eur"]
    )
    for line in invoice.lines:
        writer.writerow(
            [
                reference,
                invoice.month,
                line.description,
                line.quantity,
                line.unit_price_cents,
                line.amount_cents,
                format_eur(line.amount_cents),
            ]
        )
    for label, cents in (
        ("subtotal", invoice.subtotal_cents),
        ("vat", invoice.vat_cents),
        ("total", invoice.total_cents),
    ):
        writer.writerow([reference, invoice.month, label, "", "", cents, format_eur(cents)])
    return out.getvalue()

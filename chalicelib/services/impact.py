"""Impact from metadata only: messages and deliveries per organisation and month, the CO2e the
e-mails they replaced would have cost, call minutes and their own CO2e, trees funded; and the
pilot report.

Counting uses what the server already knows (a message was stored, for so many recipients),
never content: per organisation and month, two atomic counters, ``messages`` and
``notifications`` (one per recipient; see chalicelib/adapters/records/impact.py). CO2e is
never stored: it is computed on read, in integer micrograms, from the counts and the current
factors (``BillingSettings``, whose defaults come from the footprint model in
chalicelib/footprint.py, the one bench/cost.py reads), so a better factor restates history
consistently.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from chalicelib.adapters.records.donations import DonationRecords
from chalicelib.adapters.records.files import FileRecords
from chalicelib.adapters.records.impact import Counts, ImpactRecords
from chalicelib.adapters.records.invoices import InvoiceRecords
from chalicelib.billing_settings import BillingSettings
from chalicelib.domain.billing import (
    InvoiceStatus,
    billable_member_ids,
    co2e_avoided_ug,
    format_grams,
    month_end,
    month_of,
    month_start,
    months_between,
    percent_of,
    pilot_ends_at,
    plan_status,
    storage_co2e_ug,
    ug_to_mg,
)
from chalicelib.footprint import model
from chalicelib.ports import Clock, Store
from chalicelib.services.organisations import OrganisationService

CSV_COLUMNS = (
    "month",
    "active_users",
    "messages",
    "notifications",
    "emails_avoided",
    "co2e_avoided_g",
    "call_minutes",
    "call_co2e_g",
    "donation_cents",
    "trees_funded",
)


def footprint_sources() -> dict[str, str]:
    """Where each default factor comes from, as chalicelib/footprint.json says (a setting that
    overrides a factor leaves its source as the model's)."""
    f = model()
    storage = (
        f"{f.source('hdd_wh_per_tb_hour')}; x {f.value('storage_replicas'):g} copies "
        f"({f.factors['storage_replicas']['source']}), x PUE {f.value('pue'):g}, over 730 hours, "
        f"at {f.value('grid_g_per_kwh'):g} g CO2e per kWh; electricity only"
    )
    notification = (
        f"{f.source('notification_wire_bytes')}; at {f.source('network_kwh_per_gb')}; "
        f"and {f.value('grid_g_per_kwh'):g} g CO2e per kWh"
    )
    return {
        "storage": storage,
        "email": f.source("email_g"),
        "notification": notification,
        "call_minute": f.source("call_g_per_hour"),
    }


class ImpactService:
    def __init__(
        self, store: Store, clock: Clock, orgs: OrganisationService, settings: BillingSettings | None = None
    ) -> None:
        self._counters = ImpactRecords(store)
        self._invoices = InvoiceRecords(store)
        self._donations = DonationRecords(store)
        self._files = FileRecords(store)
        self._clock = clock
        self._orgs = orgs
        self.settings = settings or BillingSettings()

    # -- counting --------------------------------------------------------------------------------

    def record_message(self, org_id: str, at: int, recipients: int) -> None:
        """Count one stored message delivered to ``recipients`` people (the sender excluded).

        Two atomic increments on one item, whatever the number of recipients. Not idempotent:
        call it once per newly stored message (not for a resend the message-id marker caught).
        """
        if recipients < 0:
            raise ValueError("recipients cannot be negative")
        self._counters.add(org_id, month_of(at), messages=1, notifications=recipients)

    def record_call(self, org_id: str, at: int, participant_seconds: int) -> None:
        """Count an ended call's participant-seconds in its month: one atomic increment. The
        caller calls it once, on the conditional write that ended the call."""
        if participant_seconds < 0:
            raise ValueError("participant seconds cannot be negative")
        if participant_seconds:
            self._counters.add(org_id, month_of(at), call_seconds=participant_seconds)

    def _co2e_mg(self, notifications: int) -> int:
        s = self.settings
        return ug_to_mg(
            co2e_avoided_ug(
                notifications,
                ug_per_email=s.co2e_ug_per_email,
                ug_per_notification=s.co2e_ug_per_notification,
            )
        )

    def _figures(self, messages: int, notifications: int, call_seconds: int = 0) -> dict[str, Any]:
        mg = self._co2e_mg(notifications)
        call_mg = call_seconds * self.settings.co2e_ug_per_call_minute // 60_000  # µg/min -> mg/s
        return {
            "messages": messages,
            "notifications": notifications,
            "emails_avoided": notifications,
            "co2e_avoided_mg": mg,
            "co2e_avoided_g": format_grams(mg),
            "call_minutes": (call_seconds + 30) // 60,
            "call_co2e_mg": call_mg,
            "call_co2e_g": format_grams(call_mg),
        }

    def assumptions(self) -> dict[str, Any]:
        s = self.settings
        return {
            "co2e_ug_per_email": s.co2e_ug_per_email,
            "co2e_ug_per_notification": s.co2e_ug_per_notification,
            "co2e_ug_per_gb_month": s.co2e_ug_per_gb_month,
            "co2e_ug_per_call_minute": s.co2e_ug_per_call_minute,
            "emails_avoided": "one e-mail per recipient of each message",
            "call_minutes": "participant-minutes of the calls that ended in the month: each minute "
            "with two devices or more in a call counts once per device in it",
            "sources": footprint_sources(),
        }

    # -- views -----------------------------------------------------------------------------------

    def org_impact(self, org_id: str) -> dict[str, Any]:
        """The organisation's messages, notifications, e-mails avoided and CO2e, month by month."""
        counts = self._counters.by_month(org_id)
        months = [{"month": m, **self._figures(*counts[m])} for m in sorted(counts)]
        totals = [sum(column) for column in zip(*counts.values(), strict=True)] or [0, 0, 0]
        return {
            "org_id": org_id,
            "months": months,
            "totals": self._figures(*totals),
            "storage": self._storage(org_id),
            "assumptions": self.assumptions(),
        }

    def _storage(self, org_id: str) -> dict[str, int]:
        """The organisation's files now, and what keeping them a month emits (not avoided: spent)."""
        in_use = max(0, self._files.bytes_in_use(org_id))
        ug = storage_co2e_ug(in_use, ug_per_gb_month=self.settings.co2e_ug_per_gb_month)
        return {"bytes_in_use": in_use, "co2e_mg_per_month": ug_to_mg(ug)}

    def public_impact(self) -> dict[str, Any]:
        """All organisations, through the last closed month: one read (the running totals)."""
        totals = self._donations.totals()
        messages = 0 if totals is None else totals.messages
        notifications = 0 if totals is None else totals.notifications
        return {
            "through": None if totals is None else totals.applied_through,
            "trees_planted": self.settings.trees_opening + (0 if totals is None else totals.trees),
            "donated_cents": 0 if totals is None else totals.donated_cents,
            **self._figures(messages, notifications),
            "assumptions": self.assumptions(),
        }

    def pilot_report(self, org_id: str) -> dict[str, Any]:
        """For a pilot's admins, at any time and at its end: month by month from the plan's start
        to now (or the pilot's end), active users (the billable-user rule over the month; month to
        date for the current one), messages, e-mails avoided, CO2e, and trees.

        ``donation_cents`` is the organisation's own contribution (the donation rate of its
        invoices before tax: nothing during a free pilot); ``trees_funded`` is that contribution
        in whole trees, cumulated; ``trees_planted_all`` counts every organisation's.
        """
        org = self._orgs.get(org_id)
        now = self._clock.now()
        s = self.settings
        status = plan_status(org, now, price_cents=s.price_cents, notice_days=s.notice_days)
        ends = pilot_ends_at(org)
        last = month_of(now if ends is None else min(now, ends - 1))
        members, devices = self._orgs.history(org_id)
        counts = self._counters.by_month(org_id)
        invoiced = {
            i.month: i.subtotal_cents
            for i in self._invoices.of_org(org_id)
            if i.status is InvoiceStatus.ISSUED
        }
        rows: list[dict[str, Any]] = []
        contributed = 0
        for month in months_between(month_of(org.plan_start), last):
            counted = counts.get(month, Counts(0, 0))
            donation = percent_of(invoiced.get(month, 0), s.donation_bp)
            trees_before = contributed // s.tree_cost_cents
            contributed += donation
            active = billable_member_ids(members, devices, month_start(month), month_end(month))
            rows.append(
                {
                    "month": month,
                    "active_users": len(active),
                    **self._figures(*counted),
                    "invoiced_cents": invoiced.get(month, 0),
                    "donation_cents": donation,
                    "trees_funded": contributed // s.tree_cost_cents - trees_before,
                }
            )
        call_seconds = sum(c.call_seconds for m, c in counts.items() if m in {r["month"] for r in rows})
        totals = self._figures(
            sum(r["messages"] for r in rows), sum(r["notifications"] for r in rows), call_seconds
        )
        totals.update(
            invoiced_cents=sum(r["invoiced_cents"] for r in rows),
            donation_cents=contributed,
            trees_funded=contributed // s.tree_cost_cents,
        )
        global_totals = self._donations.totals()
        return {
            "org_id": org.org_id,
            "org_name": org.name,
            "generated_at": now,
            "plan": status.public(),
            "months": rows,
            "totals": totals,
            "trees_planted_all": s.trees_opening + (0 if global_totals is None else global_totals.trees),
            "assumptions": self.assumptions(),
        }

    def pilot_report_csv(self, org_id: str) -> str:
        """The report's months as CSV (RFC 4180, comma-separated, UTF-8), then a ``total`` row."""
        report = self.pilot_report(org_id)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in report["months"]:
            writer.writerow([row[column] for column in CSV_COLUMNS])
        totals = report["totals"]
        writer.writerow(["total", "", *(totals[column] for column in CSV_COLUMNS[2:])])
        return out.getvalue()

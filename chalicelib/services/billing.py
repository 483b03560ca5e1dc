"""Monthly billing: one invoice per organisation and month, numbered without gaps, and the
month's donation and trees, all with single-item conditional writes (no transactions).

**Invoices.** An organisation's invoice for a month is created once (put if absent) as a *draft* holding
its computed amounts and ``claiming``, the number it is trying to take; the first draft
written is the invoice, whoever computed it. A draft becomes *issued* when it holds a number.

**Gapless numbering.** Numbers are claimed with one claim record per number (put if absent,
never changed or deleted), each naming its invoice. Three rules keep the claimed numbers a
gapless prefix 1..K, each on exactly one invoice:

1. A draft's ``claiming`` is only ever set to n when 1..n-1 are known to be claimed, and is
   set *before* the claim on n is attempted.
2. ``claiming`` moves from n to a higher number only after the claim on n was seen to belong to
   another invoice (``if_match`` on the old value, so concurrent movers agree).
3. The invoice is stamped with n (``if_match`` status draft and ``claiming`` n) only once the
   claim on n names it.

So a claim naming an invoice always equals that invoice's ``claiming`` (claims never change,
and ``claiming`` leaves n only when n is someone else's); a crash between any two steps leaves
a draft whose ``claiming`` says where to resume: the rerun finds the claim on n naming it (or
absent: 1..n-1 are still claimed, so taking n leaves no gap) and stamps it. Each number has one
claim, so no duplicate; each invoice takes a number only at its ``claiming``, so no invoice
takes two. The pointer holds a number up to which every claim is known to exist;
it only saves probing (``if_match`` on its previous value, so it never moves back) and may lag
after a crash.

**Donation and trees.** Once every invoice of the month is issued, the month's donation ledger is
put if absent (the first complete run's figures win; reruns read it). The running totals
(trees, donations, impact) then move on one ledger at a time with a put
``if_match`` on ``applied_through``: a crash between ledger and totals is completed by the next
run, exactly once, and two runs cannot both add the same month. Months close in order (the
carry from one month's trees flows into the next), so ``run_month`` refuses a month whose
previous month is not closed yet, once any month is; ``run_previous_month`` catches up.

Where these live in the store: chalicelib/adapters/records/invoices.py and donations.py.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.records.donations import DonationRecords
from chalicelib.adapters.records.impact import ImpactRecords
from chalicelib.adapters.records.invoices import InvoiceRecords
from chalicelib.billing_settings import BillingSettings
from chalicelib.domain.billing import (
    DonationLedger,
    Invoice,
    InvoiceStatus,
    Phase,
    Totals,
    compute_donation,
    compute_invoice,
    iso_date,
    month_end,
    month_of,
    month_start,
    months_between,
    next_month,
    parse_month,
    phase_at,
    plan_status,
    previous_month,
    require_sending_allowed,
    sending_allowed,
)
from chalicelib.domain.organisation import Organisation
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, NotFound
from chalicelib.ports import Clock, Store
from chalicelib.services.organisations import OrganisationService

#: The pointer is advanced every this many numbers (and at the end of a run): a crash leaves it
#: at most this far behind, which only costs the next run as many reads to catch up.
POINTER_STRIDE = 16


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class BillingRun:
    """What one ``run_month`` did (or, dry, would do)."""

    month: str
    dry_run: bool = False
    month_to_date: bool = False  # dry run of the current month: figures so far
    invoices: list[Invoice] = field(default_factory=list)
    issued: int = 0  # numbered by this run
    existing: int = 0  # issued before this run
    not_billed: Counter[str] = field(default_factory=Counter)  # reason -> organisations
    messages: int = 0
    notifications: int = 0
    donation: DonationLedger | None = None
    caught_up: list[str] = field(default_factory=list)  # earlier months closed first
    complete: bool = True  # False: stopped at the deadline; rerun to finish (no ledger yet)

    @property
    def revenue_cents(self) -> int:
        return sum(i.subtotal_cents for i in self.invoices)

    def public(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "dry_run": self.dry_run,
            "month_to_date": self.month_to_date,
            "invoices": [i.public() for i in self.invoices],
            "issued": self.issued,
            "existing": self.existing,
            "not_billed": dict(self.not_billed),
            "revenue_cents": self.revenue_cents,
            "vat_cents": sum(i.vat_cents for i in self.invoices),
            "total_cents": sum(i.total_cents for i in self.invoices),
            "donation": None if self.donation is None else self.donation.public(),
            "caught_up": self.caught_up,
            "complete": self.complete,
        }


class _Numbering:
    """One run's view of the invoice numbers: ``known`` is a number up to which every claim is
    known to exist (read from the pointer, then probed; grows with each claim seen)."""

    def __init__(self, invoices: InvoiceRecords, clock: Clock) -> None:
        self._invoices = invoices
        self._clock = clock
        self.known = 0
        self.pointer: int | None = None  # last value read or written; None: no pointer item yet
        self._synced = False

    def _read_pointer(self) -> int:
        self.pointer = self._invoices.pointer()
        self.known = max(self.known, self.pointer or 0)
        return self.known

    def candidate(self) -> int:
        """The lowest number possibly free: every number below it is claimed."""
        if not self._synced:
            self._read_pointer()
            while self._invoices.is_claimed(self.known + 1):
                self.known += 1
            self._synced = True
        return self.known + 1

    def number(self, draft: Invoice) -> tuple[Invoice, bool]:
        """Issue a draft: claim its ``claiming`` number, or move on to the next free one.

        Returns the issued invoice, and whether this run stamped it (not a concurrent one)."""
        while True:
            n = draft.claiming
            assert n is not None and n >= 1, "a stored draft always claims a number"
            if self._invoices.claim(n, draft, at=self._clock.now()).names(draft):
                return self._stamp(draft, n)
            # n is another invoice's: by rule 1, every number up to n is claimed.
            self.known = max(self.known, n)
            following = max(n, self._read_pointer()) + 1
            moved = draft.model_copy(update={"claiming": following})
            try:
                self._invoices.replace_draft(moved, claiming=n)
                draft = moved
            except ConditionFailed:
                current = self._invoices.get(draft.org_id, draft.month)
                assert current is not None, "invoices are never deleted"
                if current.status is InvoiceStatus.ISSUED:
                    return current, False  # a concurrent run issued it meanwhile
                draft = current  # a concurrent run moved it on: follow

    def _stamp(self, draft: Invoice, n: int) -> tuple[Invoice, bool]:
        issued = draft.model_copy(
            update={"status": InvoiceStatus.ISSUED, "number": n, "issued_at": self._clock.now()}
        )
        stamped = True
        try:
            self._invoices.replace_draft(issued, claiming=n)
        except ConditionFailed:
            stamped = False
            current = self._invoices.get(draft.org_id, draft.month)
            if current is None or current.status is not InvoiceStatus.ISSUED or current.number != n:
                raise RuntimeError(
                    f"the invoice of {draft.org_id} for {draft.month} lost its claim on number {n}"
                ) from None
            issued = current  # a concurrent run stamped it first
        self.known = max(self.known, n)
        if self.known - (self.pointer or 0) >= POINTER_STRIDE:
            self.advance_pointer()
        return issued, stamped

    def advance_pointer(self) -> None:
        """Move the pointer up to ``known`` unless someone moved it meanwhile (it never goes back)."""
        if self.known <= (self.pointer or 0):
            return
        try:
            self._invoices.move_pointer(self.known, previous=self.pointer, at=self._clock.now())
            self.pointer = self.known
        except ConditionFailed:
            self._read_pointer()


class BillingService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        settings: BillingSettings | None = None,
    ) -> None:
        self._invoices = InvoiceRecords(store)
        self._donations = DonationRecords(store)
        self._impact = ImpactRecords(store)
        self._clock = clock
        self._orgs = orgs
        self.settings = settings or BillingSettings()

    # -- plans -------------------------------------------------------------------------------------

    def _org(self, org: Organisation | str) -> Organisation:
        return org if isinstance(org, Organisation) else self._orgs.get(org)

    def plan_status(self, org: Organisation | str, now: int | None = None) -> dict[str, Any]:
        """The plan, its phase and dates, and ``notice`` from 30 days before a pilot's end."""
        organisation = self._org(org)
        s = self.settings
        status = plan_status(
            organisation,
            self._clock.now() if now is None else now,
            price_cents=s.price_cents,
            notice_days=s.notice_days,
        )
        return {"org_id": organisation.org_id, **status.public()}

    def sending_allowed(self, org: Organisation | str, now: int | None = None) -> bool:
        """False once a pilot that chose ``suspend`` has ended. Pass the Organisation when it is
        already loaded: then no store read happens."""
        at = self._clock.now() if now is None else now
        return sending_allowed(self._org(org), at)

    def require_sending_allowed(self, org: Organisation | str, now: int | None = None) -> None:
        """Raises ``SendingSuspended`` (403, code ``sending_suspended``) when sending is suspended."""
        at = self._clock.now() if now is None else now
        require_sending_allowed(self._org(org), at)

    # -- invoices ----------------------------------------------------------------------------------

    def estimate(self, org_id: str, month: str | None = None) -> Invoice | None:
        """What the organisation would owe for ``month`` (default: this month, to date); writes nothing."""
        now = self._clock.now()
        return self._compute(self._orgs.get(org_id), parse_month(month or month_of(now)), now)

    def _compute(self, org: Organisation, month: str, now: int) -> Invoice | None:
        """The month's invoice from the members' and devices' history, as it stands at ``now``."""
        members, devices = self._orgs.history(org.org_id)
        return compute_invoice(
            org,
            month,
            members,
            devices,
            price_cents=self.settings.price_cents,
            vat_bp=self.settings.vat_bp,
            computed_at=now,
        )

    def invoice(self, org_id: str, month: str) -> Invoice | None:
        return self._invoices.get(org_id, parse_month(month))

    def invoices_of(self, org_id: str) -> list[Invoice]:
        """The organisation's issued invoices, oldest first (what its admins see)."""
        return [i for i in self._invoices.of_org(org_id) if i.status is InvoiceStatus.ISSUED]

    def invoice_register(self) -> list[dict[str, Any]]:
        """Every claimed number in order, with the invoice it names: the accounting register."""
        return [claim.public() for claim in self._invoices.claims()]

    def run_previous_month(self, now: int | None = None, *, deadline: float | None = None) -> BillingRun:
        """Bill the month before ``now`` (the scheduled job, e.g. on the 1st), first closing any
        month skipped since the last one closed (a missed schedule catches up in order)."""
        target = previous_month(month_of(self._clock.now() if now is None else now))
        latest = self._donations.latest_ledger()
        caught_up: list[str] = []
        if latest is not None and latest.month < previous_month(target):
            for month in months_between(next_month(latest.month), previous_month(target)):
                earlier = self.run_month(month, deadline=deadline)
                if not earlier.complete:
                    return earlier
                caught_up.append(month)
        run = self.run_month(target, deadline=deadline)
        run.caught_up = caught_up
        return run

    def run_month(self, month: str, *, dry_run: bool = False, deadline: float | None = None) -> BillingRun:
        """Issue every invoice of ``month``, then record its donation and trees. Safe to rerun at
        any time, after a crash anywhere, or concurrently: see the module docstring.

        ``dry_run`` computes the invoices and the donation, the current month included (figures
        to date), and writes nothing. Without it the month must be over.

        ``deadline`` (``time.monotonic()`` seconds, e.g. a Lambda's remaining time): past it,
        the run stops after the organisation in hand (at least one per run) and returns with
        ``complete`` False and no ledger; the next run picks up where it stopped.
        """
        month = parse_month(month)
        now = self._clock.now()
        if month_start(month) > now:
            raise BadRequest(f"{month} has not begun")
        ongoing = month_end(month) > now
        if ongoing and not dry_run:
            raise BadRequest(
                f"{month} is not over: it can be billed from {iso_date(month_end(month))}; "
                "a dry run shows it to date"
            )
        run = BillingRun(month=month, dry_run=dry_run, month_to_date=ongoing)
        closed = self._donations.ledger(month)
        if closed is None and not dry_run:
            self._require_next_to_close(month)
        numbering = _Numbering(self._invoices, self._clock)
        for count, org_id in enumerate(self._orgs.ids()):
            if count and deadline is not None and time.monotonic() >= deadline:
                run.complete = False
                numbering.advance_pointer()  # a no-op in a dry run: it numbers nothing
                return run
            self._bill(org_id, month, run, numbering, now, closed=closed is not None)
        if dry_run:
            run.donation = closed or self._donation(month, run, now, preview=True)
            return run
        numbering.advance_pointer()
        run.donation = closed or self._donation(month, run, now, preview=False)
        self._apply_ledgers(now)
        return run

    def _require_next_to_close(self, month: str) -> None:
        latest = self._donations.latest_ledger()
        if latest is None:
            return  # the first month ever closed may be any month
        if latest.month > month:
            raise Conflict(f"months up to {latest.month} are closed: {month} can no longer be billed")
        if latest.month != previous_month(month):
            raise Conflict(f"months are closed in order: bill {next_month(latest.month)} first")

    def _bill(
        self, org_id: str, month: str, run: BillingRun, numbering: _Numbering, now: int, *, closed: bool
    ) -> None:
        invoice = self._invoices.get(org_id, month)
        if closed:  # every invoice was issued before the ledger: only report them
            if invoice is not None:
                run.invoices.append(invoice)
                run.existing += 1
            return
        counted = self._impact.counts(org_id, month)
        run.messages += counted.messages
        run.notifications += counted.notifications
        if invoice is None:
            try:
                org = self._orgs.get(org_id)
            except NotFound:
                run.not_billed["missing"] += 1
                return
            computed = self._compute(org, month, now)
            if computed is None:
                run.not_billed[self._reason(org, month)] += 1
                return
            if run.dry_run:
                run.invoices.append(computed)
                return
            invoice = self._create_draft(computed, numbering)
        if invoice.status is InvoiceStatus.ISSUED:
            run.existing += 1
        elif not run.dry_run:
            invoice, stamped = numbering.number(invoice)
            run.issued += stamped
            run.existing += not stamped
        run.invoices.append(invoice)

    def _reason(self, org: Organisation, month: str) -> str:
        phase = phase_at(org, month_end(month) - 1)
        return "no_billable_user" if phase is Phase.PRO else phase.value

    def _create_draft(self, computed: Invoice, numbering: _Numbering) -> Invoice:
        draft = computed.model_copy(update={"claiming": numbering.candidate()})
        try:
            self._invoices.create(draft)
        except ConditionFailed:
            stored = self._invoices.get(draft.org_id, draft.month)
            assert stored is not None, "invoices are never deleted"
            return stored  # a concurrent run wrote it first: its draft is the invoice
        return draft

    # -- donations and trees -----------------------------------------------------------------------

    def donation(self, month: str) -> DonationLedger | None:
        return self._donations.ledger(parse_month(month))

    def donations(self) -> list[DonationLedger]:
        return self._donations.ledgers()

    def trees_planted(self) -> int:
        """The opening balance plus every closed month's trees."""
        totals = self._donations.totals()
        return self.settings.trees_opening + (0 if totals is None else totals.trees)

    def _donation(self, month: str, run: BillingRun, now: int, *, preview: bool) -> DonationLedger:
        previous = self._donations.ledger(previous_month(month))
        if previous is None and preview:  # the previous month may still be open: last carry known
            previous = self._donations.latest_ledger(before=month)
        s = self.settings
        ledger = compute_donation(
            month,
            run.revenue_cents,
            len(run.invoices),
            donation_bp=s.donation_bp,
            partners=s.partners,
            tree_cost_cents=s.tree_cost_cents,
            carry_in_cents=0 if previous is None else previous.carry_out_cents,
            messages=run.messages,
            notifications=run.notifications,
            recorded_at=now,
        )
        if preview:
            return ledger
        try:
            self._donations.record_ledger(ledger)
        except ConditionFailed:
            stored = self._donations.ledger(month)
            assert stored is not None, "ledgers are never deleted"
            return stored  # a concurrent run recorded it first
        return ledger

    def _apply_ledgers(self, now: int) -> None:
        """Add every recorded ledger not yet in the totals, in month order, each exactly once."""
        totals = self._donations.totals()
        while True:
            if totals is None:
                ledger = self._donations.first_ledger()
            else:
                ledger = self._donations.ledger(next_month(totals.applied_through))
            if ledger is None:
                return
            updated = Totals.after(totals, ledger, now)
            try:
                self._donations.save_totals(updated, previous=totals)
                totals = updated
            except ConditionFailed:
                totals = self._donations.totals()  # a concurrent run applied it: carry on from there

"""Monthly billing: one invoice per organisation and month, numbered without gaps, and the
month's donation and trees, all with single-item conditional writes (no transactions).

**Invoices.** ``ORG#o / INVOICE#YYYY-MM`` is created once (put if absent) as a *draft* holding
its computed amounts and ``claiming``, the number it is trying to take; the first draft
written is the invoice, whoever computed it. A draft becomes *issued* when it holds a number.

**Gapless numbering.** Numbers are claimed with items ``INVOICE_NO / N#<n>`` (put if absent,
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
takes two. ``INVOICE_NO / POINTER`` holds a number up to which every claim is known to exist;
it only saves probing (``if_match`` on its previous value, so it never moves back) and may lag
after a crash.

**Donation and trees.** Once every invoice of the month is issued, ``DONATIONS / MONTH#m`` is
put if absent (the first complete run's figures win; reruns read it). The running totals
``DONATIONS / TOTAL`` (trees, donations, impact) then move on one ledger at a time with a put
``if_match`` on ``applied_through``: a crash between ledger and totals is completed by the next
run, exactly once, and two runs cannot both add the same month. Months close in order (the
carry from one month's trees flows into the next), so ``run_month`` refuses a month whose
previous month is not closed yet, once any month is; ``run_previous_month`` catches up.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
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
from chalicelib.domain.organisation import Device, Member, Organisation
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, NotFound
from chalicelib.ports import Clock, Store
from chalicelib.services.organisations import OrganisationService

#: The pointer is advanced every this many numbers (and at the end of a run): a crash leaves it
#: at most this far behind, which only costs the next run as many reads to catch up.
POINTER_STRIDE = 16


# -- reading the records (shared with the impact service) ---------------------------------------


def load_invoice(store: Store, org_id: str, month: str) -> Invoice | None:
    item = store.get(*keys.org_invoice(org_id, month))
    return None if item is None else Invoice.model_validate(item)


def org_invoices(store: Store, org_id: str) -> list[Invoice]:
    """The organisation's invoices, issued or not, oldest month first."""
    return [Invoice.model_validate(i) for i in query_all(store, f"ORG#{org_id}", keys.INVOICE_PREFIX)]


def load_ledger(store: Store, month: str) -> DonationLedger | None:
    item = store.get(*keys.donation(month))
    return None if item is None else DonationLedger.model_validate(item)


def _edge_ledger(store: Store, *, descending: bool, end: str | None = None) -> DonationLedger | None:
    pk = keys.DONATIONS_PK
    if end is None:
        page = store.query(pk, prefix=keys.DONATION_PREFIX, limit=1, descending=descending)
    else:
        page = store.query(pk, start=keys.DONATION_PREFIX, end=end, limit=1, descending=descending)
    return DonationLedger.model_validate(page.items[0]) if page.items else None


def latest_ledger(store: Store, *, before: str | None = None) -> DonationLedger | None:
    """The latest month's ledger, or the latest strictly before month ``before``."""
    end = None if before is None else keys.donation(previous_month(before))[1]
    return _edge_ledger(store, descending=True, end=end)


def all_ledgers(store: Store) -> list[DonationLedger]:
    return [
        DonationLedger.model_validate(i) for i in query_all(store, keys.DONATIONS_PK, keys.DONATION_PREFIX)
    ]


def load_totals(store: Store) -> Totals | None:
    item = store.get(*keys.donation_totals())
    return None if item is None else Totals.model_validate(item)


def impact_counts(store: Store, org_id: str, month: str) -> tuple[int, int]:
    """(messages, notifications) recorded for the organisation and month."""
    item = store.get(*keys.org_impact(org_id, month)) or {}
    return int(item.get("messages", 0)), int(item.get("notifications", 0))


def member_history(store: Store, org_id: str) -> tuple[list[Member], list[Device]]:
    """Every member ever (removed ones included) and every device ever (revoked ones included)."""
    members: list[Member] = []
    devices: list[Device] = []
    for item in query_all(store, f"ORG#{org_id}", keys.MEMBER_PREFIX):
        if keys.is_device_sk(item["sk"]):
            devices.append(Device.model_validate(item))
        else:
            members.append(Member.model_validate(item))
    return members, devices


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

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.known = 0
        self.pointer: int | None = None  # last value read or written; None: no pointer item yet
        self._synced = False

    def _read_pointer(self) -> int:
        item = self._store.get(*keys.invoice_pointer())
        self.pointer = None if item is None else int(item["last"])
        self.known = max(self.known, self.pointer or 0)
        return self.known

    def candidate(self) -> int:
        """The lowest number possibly free: every number below it is claimed."""
        if not self._synced:
            self._read_pointer()
            while self._store.get(*keys.invoice_number(self.known + 1)) is not None:
                self.known += 1
            self._synced = True
        return self.known + 1

    def number(self, draft: Invoice) -> tuple[Invoice, bool]:
        """Issue a draft: claim its ``claiming`` number, or move on to the next free one.

        Returns the issued invoice, and whether this run stamped it (not a concurrent one)."""
        key = keys.org_invoice(draft.org_id, draft.month)
        while True:
            n = draft.claiming
            assert n is not None and n >= 1, "a stored draft always claims a number"
            if self._claim(draft, n):
                return self._stamp(draft, n)
            # n is another invoice's: by rule 1, every number up to n is claimed.
            self.known = max(self.known, n)
            following = max(n, self._read_pointer()) + 1
            moved = draft.model_copy(update={"claiming": following})
            try:
                self._store.put(
                    keys.record(key, moved.model_dump(mode="json")),
                    if_match={"status": InvoiceStatus.DRAFT.value, "claiming": n},
                )
                draft = moved
            except ConditionFailed:
                current = load_invoice(self._store, draft.org_id, draft.month)
                assert current is not None, "invoices are never deleted"
                if current.status is InvoiceStatus.ISSUED:
                    return current, False  # a concurrent run issued it meanwhile
                draft = current  # a concurrent run moved it on: follow

    def _claim(self, draft: Invoice, n: int) -> bool:
        pk, sk = keys.invoice_number(n)
        claim = {
            "pk": pk,
            "sk": sk,
            "number": n,
            "org_id": draft.org_id,
            "month": draft.month,
            "claimed_at": self._clock.now(),
        }
        try:
            self._store.put(claim, if_absent=True)
            return True
        except ConditionFailed:
            holder = self._store.get(pk, sk)
            assert holder is not None, "claims are never deleted"
            return bool(holder["org_id"] == draft.org_id and holder["month"] == draft.month)

    def _stamp(self, draft: Invoice, n: int) -> tuple[Invoice, bool]:
        issued = draft.model_copy(
            update={"status": InvoiceStatus.ISSUED, "number": n, "issued_at": self._clock.now()}
        )
        key = keys.org_invoice(draft.org_id, draft.month)
        stamped = True
        try:
            self._store.put(
                keys.record(key, issued.model_dump(mode="json")),
                if_match={"status": InvoiceStatus.DRAFT.value, "claiming": n},
            )
        except ConditionFailed:
            stamped = False
            current = load_invoice(self._store, draft.org_id, draft.month)
            if current is None or current.status is not InvoiceStatus.ISSUED or current.number != n:
                raise RuntimeError(f"invoice {key} lost its claim on number {n}") from None
            issued = current  # a concurrent run stamped it first
        self.known = max(self.known, n)
        if self.known - (self.pointer or 0) >= POINTER_STRIDE:
            self.advance_pointer()
        return issued, stamped

    def advance_pointer(self) -> None:
        """Move the pointer up to ``known`` unless someone moved it meanwhile (it never goes back)."""
        if self.known <= (self.pointer or 0):
            return
        pk, sk = keys.invoice_pointer()
        item = {"pk": pk, "sk": sk, "last": self.known, "updated_at": self._clock.now()}
        try:
            if self.pointer is None:
                self._store.put(item, if_absent=True)
            else:
                self._store.put(item, if_match={"last": self.pointer})
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
        self._store = store
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
        members, devices = member_history(self._store, org.org_id)
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
        return load_invoice(self._store, org_id, parse_month(month))

    def invoices_of(self, org_id: str) -> list[Invoice]:
        """The organisation's issued invoices, oldest first (what its admins see)."""
        return [i for i in org_invoices(self._store, org_id) if i.status is InvoiceStatus.ISSUED]

    def invoice_register(self) -> list[dict[str, Any]]:
        """Every claimed number in order, with the invoice it names: the accounting register."""
        return [
            {"number": int(i["number"]), "org_id": i["org_id"], "month": i["month"]}
            for i in query_all(self._store, keys.INVOICE_NO_PK, keys.INVOICE_NO_PREFIX)
        ]

    def run_previous_month(self, now: int | None = None, *, deadline: float | None = None) -> BillingRun:
        """Bill the month before ``now`` (the scheduled job, e.g. on the 1st), first closing any
        month skipped since the last one closed (a missed schedule catches up in order)."""
        target = previous_month(month_of(self._clock.now() if now is None else now))
        latest = latest_ledger(self._store)
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
        closed = load_ledger(self._store, month)
        if closed is None and not dry_run:
            self._require_next_to_close(month)
        numbering = _Numbering(self._store, self._clock)
        for count, item in enumerate(query_all(self._store, keys.ORGS_PK, "ORG#")):
            if count and deadline is not None and time.monotonic() >= deadline:
                run.complete = False
                numbering.advance_pointer()  # a no-op in a dry run: it numbers nothing
                return run
            self._bill(item["org_id"], month, run, numbering, now, closed=closed is not None)
        if dry_run:
            run.donation = closed or self._donation(month, run, now, preview=True)
            return run
        numbering.advance_pointer()
        run.donation = closed or self._donation(month, run, now, preview=False)
        self._apply_ledgers(now)
        return run

    def _require_next_to_close(self, month: str) -> None:
        latest = latest_ledger(self._store)
        if latest is None:
            return  # the first month ever closed may be any month
        if latest.month > month:
            raise Conflict(f"months up to {latest.month} are closed: {month} can no longer be billed")
        if latest.month != previous_month(month):
            raise Conflict(f"months are closed in order: bill {next_month(latest.month)} first")

    def _bill(
        self, org_id: str, month: str, run: BillingRun, numbering: _Numbering, now: int, *, closed: bool
    ) -> None:
        invoice = load_invoice(self._store, org_id, month)
        if closed:  # every invoice was issued before the ledger: only report them
            if invoice is not None:
                run.invoices.append(invoice)
                run.existing += 1
            return
        messages, notifications = impact_counts(self._store, org_id, month)
        run.messages += messages
        run.notifications += notifications
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
        key = keys.org_invoice(draft.org_id, draft.month)
        try:
            self._store.put(keys.record(key, draft.model_dump(mode="json")), if_absent=True)
        except ConditionFailed:
            stored = load_invoice(self._store, draft.org_id, draft.month)
            assert stored is not None, "invoices are never deleted"
            return stored  # a concurrent run wrote it first: its draft is the invoice
        return draft

    # -- donations and trees -----------------------------------------------------------------------

    def donation(self, month: str) -> DonationLedger | None:
        return load_ledger(self._store, parse_month(month))

    def donations(self) -> list[DonationLedger]:
        return all_ledgers(self._store)

    def trees_planted(self) -> int:
        """The opening balance plus every closed month's trees."""
        totals = load_totals(self._store)
        return self.settings.trees_opening + (0 if totals is None else totals.trees)

    def _donation(self, month: str, run: BillingRun, now: int, *, preview: bool) -> DonationLedger:
        previous = load_ledger(self._store, previous_month(month))
        if previous is None and preview:  # the previous month may still be open: last carry known
            previous = latest_ledger(self._store, before=month)
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
            self._store.put(keys.record(keys.donation(month), ledger.model_dump(mode="json")), if_absent=True)
        except ConditionFailed:
            stored = load_ledger(self._store, month)
            assert stored is not None, "ledgers are never deleted"
            return stored  # a concurrent run recorded it first
        return ledger

    def _apply_ledgers(self, now: int) -> None:
        """Add every recorded ledger not yet in the totals, in month order, each exactly once."""
        totals = load_totals(self._store)
        while True:
            if totals is None:
                ledger = _edge_ledger(self._store, descending=False)
            else:
                ledger = load_ledger(self._store, next_month(totals.applied_through))
            if ledger is None:
                return
            updated = Totals.after(totals, ledger, now)
            item = keys.record(keys.donation_totals(), updated.model_dump(mode="json"))
            try:
                if totals is None:
                    self._store.put(item, if_absent=True)
                else:
                    self._store.put(item, if_match={"applied_through": totals.applied_through})
                totals = updated
            except ConditionFailed:
                totals = load_totals(self._store)  # a concurrent run applied it: carry on from there

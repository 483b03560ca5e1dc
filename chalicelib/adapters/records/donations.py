"""Donation ledgers and their running totals (the protocol is in chalicelib/services/billing.py).

``DONATIONS / MONTH#YYYY-MM`` is a month's ledger, recorded once; ``DONATIONS / TOTAL`` the
running totals, moved on one ledger at a time.
"""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.billing import DonationLedger, Totals, previous_month
from chalicelib.ports import Store


class DonationRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- ledgers -----------------------------------------------------------------------------

    def ledger(self, month: str) -> DonationLedger | None:
        item = self._store.get(*keys.donation(month))
        return None if item is None else DonationLedger.model_validate(item)

    def ledgers(self) -> list[DonationLedger]:
        """Every month's ledger, oldest first."""
        items = query_all(self._store, keys.DONATIONS_PK, keys.DONATION_PREFIX)
        return [DonationLedger.model_validate(i) for i in items]

    def first_ledger(self) -> DonationLedger | None:
        return self._edge(descending=False)

    def latest_ledger(self, *, before: str | None = None) -> DonationLedger | None:
        """The latest month's ledger, or the latest strictly before month ``before``."""
        return self._edge(
            descending=True, end=None if before is None else keys.donation(previous_month(before))[1]
        )

    def _edge(self, *, descending: bool, end: str | None = None) -> DonationLedger | None:
        pk = keys.DONATIONS_PK
        if end is None:
            page = self._store.query(pk, prefix=keys.DONATION_PREFIX, limit=1, descending=descending)
        else:
            page = self._store.query(pk, start=keys.DONATION_PREFIX, end=end, limit=1, descending=descending)
        return DonationLedger.model_validate(page.items[0]) if page.items else None

    def record_ledger(self, ledger: DonationLedger) -> None:
        """Put if absent: ``ConditionFailed`` if the month's ledger is recorded already."""
        self._store.put(
            keys.record(keys.donation(ledger.month), ledger.model_dump(mode="json")), if_absent=True
        )

    # -- totals ------------------------------------------------------------------------------

    def totals(self) -> Totals | None:
        item = self._store.get(*keys.donation_totals())
        return None if item is None else Totals.model_validate(item)

    def save_totals(self, totals: Totals, *, previous: Totals | None) -> None:
        """Replace ``previous`` (None: no totals yet) by ``totals``; ``ConditionFailed`` if the
        stored totals are no longer ``previous`` (compared on ``applied_through``)."""
        item = keys.record(keys.donation_totals(), totals.model_dump(mode="json"))
        if previous is None:
            self._store.put(item, if_absent=True)
        else:
            self._store.put(item, if_match={"applied_through": previous.applied_through})

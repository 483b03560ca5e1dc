"""Invoices and their gapless numbering (the protocol is in chalicelib/services/billing.py).

``ORG#o / INVOICE#YYYY-MM`` is an organisation's invoice for a month, draft then issued.
``INVOICE_NO / N#<n>`` is the claim on number n, naming its invoice: put if absent, never
changed or deleted. ``INVOICE_NO / POINTER`` holds a number up to which every claim exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.billing import Invoice, InvoiceStatus
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store


@dataclass(frozen=True)
class NumberClaim:
    """Invoice number ``number`` belongs to the invoice of ``org_id`` for ``month``."""

    number: int
    org_id: str
    month: str

    def names(self, invoice: Invoice) -> bool:
        return self.org_id == invoice.org_id and self.month == invoice.month

    def public(self) -> dict[str, Any]:
        return {"number": self.number, "org_id": self.org_id, "month": self.month}


class InvoiceRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- invoices ----------------------------------------------------------------------------

    def get(self, org_id: str, month: str) -> Invoice | None:
        item = self._store.get(*keys.org_invoice(org_id, month))
        return None if item is None else Invoice.model_validate(item)

    def of_org(self, org_id: str) -> list[Invoice]:
        """The organisation's invoices, issued or not, oldest month first."""
        items = query_all(self._store, keys.org_partition(org_id), keys.INVOICE_PREFIX)
        return [Invoice.model_validate(i) for i in items]

    def create(self, draft: Invoice) -> None:
        """Put if absent: ``ConditionFailed`` if the month's invoice already exists."""
        self._put(draft, if_absent=True)

    def replace_draft(self, invoice: Invoice, *, claiming: int) -> None:
        """Overwrite the stored invoice only while it is a draft claiming ``claiming``
        (``ConditionFailed`` otherwise)."""
        self._put(invoice, if_match={"status": InvoiceStatus.DRAFT.value, "claiming": claiming})

    def _put(self, invoice: Invoice, **condition: Any) -> None:
        key = keys.org_invoice(invoice.org_id, invoice.month)
        self._store.put(keys.record(key, invoice.model_dump(mode="json")), **condition)

    # -- numbers -----------------------------------------------------------------------------

    def claim(self, number: int, invoice: Invoice, *, at: int) -> NumberClaim:
        """Claim ``number`` for ``invoice`` unless it is claimed already; the claim that holds it."""
        claim = NumberClaim(number, invoice.org_id, invoice.month)
        key = keys.invoice_number(number)
        try:
            self._store.put(keys.record(key, {**claim.public(), "claimed_at": at}), if_absent=True)
            return claim
        except ConditionFailed:
            holder = self._store.get(*key)
            assert holder is not None, "claims are never deleted"
            return _claim(holder)

    def is_claimed(self, number: int) -> bool:
        return self._store.get(*keys.invoice_number(number)) is not None

    def claims(self) -> list[NumberClaim]:
        """Every claimed number in order: the accounting register."""
        return [_claim(i) for i in query_all(self._store, keys.INVOICE_NO_PK, keys.INVOICE_NO_PREFIX)]

    def pointer(self) -> int | None:
        """The number up to which every number is claimed, as last recorded; None before any."""
        item = self._store.get(*keys.invoice_pointer())
        return None if item is None else int(item["last"])

    def move_pointer(self, last: int, *, previous: int | None, at: int) -> None:
        """Set the pointer to ``last`` if it still holds ``previous`` (None: no pointer yet);
        ``ConditionFailed`` if someone moved it meanwhile."""
        item = keys.record(keys.invoice_pointer(), {"last": last, "updated_at": at})
        if previous is None:
            self._store.put(item, if_absent=True)
        else:
            self._store.put(item, if_match={"last": previous})


def _claim(item: dict[str, Any]) -> NumberClaim:
    return NumberClaim(int(item["number"]), str(item["org_id"]), str(item["month"]))

"""Partner organisations (docs/protocol.md, section 22).

An invitation is ``PARTNERINV#p / META`` (expiring with its ticket), claimed once by
``PARTNERINV#p / ACCEPTED``; a partnership is one record ``PARTNERSHIP#<low>#<high> / META`` for
the pair, and each side points to it from its own partition (``ORG#o / PARTNER#<other>``).
"""

from __future__ import annotations

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.partners import PartnerInvitation, Partnership
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Store

#: An invitation's record outlives its ticket a little, so a late acceptance gets 410, not 404.
GRACE_SECONDS = 7 * 86400


class PartnerRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def save_invitation(self, invitation: PartnerInvitation) -> None:
        fields = {**invitation.model_dump(mode="json"), "expires_at": invitation.expires_at + GRACE_SECONDS}
        self._store.put(keys.record(keys.partner_invitation(invitation.code), fields))

    def invitation(self, code: str) -> PartnerInvitation | None:
        item = self._store.get(*keys.partner_invitation(code))
        return None if item is None else PartnerInvitation.model_validate(item)

    def claim(self, invitation: PartnerInvitation, accepter: str) -> bool:
        """True for the first acceptance of this invitation, False for any later one."""
        fields: dict[str, object] = {
            "accepter": accepter,
            "expires_at": invitation.expires_at + GRACE_SECONDS,
        }
        try:
            self._store.put(
                keys.record(keys.partner_invitation_claim(invitation.code), fields), if_absent=True
            )
        except ConditionFailed:
            return False
        return True

    def claimed_by(self, code: str) -> str | None:
        item = self._store.get(*keys.partner_invitation_claim(code))
        return None if item is None else str(item["accepter"])

    def get(self, org_a: str, org_b: str) -> Partnership | None:
        item = self._store.get(*keys.partnership(org_a, org_b))
        return None if item is None else Partnership.model_validate(item)

    def save(self, partnership: Partnership, read: Partnership | None) -> Partnership:
        """The record, on condition that it is still the one ``read`` (None: there was none),
        then both sides' pointers; ConditionFailed if another write came first. The record as
        written is returned."""
        written = partnership.model_copy(update={"version": (read.version if read else 0) + 1})
        key = keys.partnership(written.inviter, written.accepter)
        item = keys.record(key, written.model_dump(mode="json"))
        if read is None:
            self._store.put(item, if_absent=True)
        else:
            self._store.put(item, if_match={"version": read.version})
        for org_id in (written.inviter, written.accepter):
            pointer: dict[str, object] = {"partner_org_id": written.other(org_id)}
            self._store.put(keys.record(keys.org_partner(org_id, written.other(org_id)), pointer))
        return written

    def of_org(self, org_id: str) -> list[Partnership]:
        found = []
        for pointer in query_all(self._store, keys.org_partition(org_id), keys.PARTNER_PREFIX):
            partnership = self.get(org_id, str(pointer["partner_org_id"]))
            if partnership is not None:
                found.append(partnership)
        return found

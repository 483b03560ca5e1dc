"""Who from a partner organisation may be in a channel of ours (docs/protocol.md, 22.6).

A channel belongs to one organisation (its host). Members of an organisation that is an
*active* partner of the host may be added to its groups (to its tribes only if the host's
partnership statement allows tribes); each is looked up in their own organisation, where they
stay billed, revoked and removed. Every check asks the partnership record again, so an end takes
effect on the next request, before the clean-up that follows it has finished.
"""

from __future__ import annotations

from chalicelib.adapters.records.partners import PartnerRecords
from chalicelib.domain.organisation import Member
from chalicelib.domain.partners import Partnership, PartnerStatus
from chalicelib.errors import NotFound
from chalicelib.ports import Store
from chalicelib.services.organisations import OrganisationService


class SharedGroups:
    def __init__(self, store: Store, orgs: OrganisationService) -> None:
        self._partners = PartnerRecords(store)
        self._orgs = orgs

    def active(self, org_id: str, partner_org_id: str) -> Partnership | None:
        """The two organisations' partnership if it is active now."""
        if org_id == partner_org_id:
            return None
        partnership = self._partners.get(org_id, partner_org_id)
        return partnership if partnership is not None and partnership.status is PartnerStatus.ACTIVE else None

    def partner_ids(self, org_id: str) -> list[str]:
        """The organisations that are active partners of ``org_id``."""
        return [p.other(org_id) for p in self._partners.of_org(org_id) if p.status is PartnerStatus.ACTIVE]

    def may_share(self, host_org: str, org_id: str) -> bool:
        """Whether a member of ``org_id`` may be in a channel of ``host_org``: their own, or an
        active partner's."""
        return org_id == host_org or self.active(host_org, org_id) is not None

    def member(self, host_org: str, member_id: str) -> Member:
        """A member of the host, or of one of its active partners; 404 for anyone else, so an
        ended partnership or a third organisation's ids show nothing."""
        try:
            return self._orgs.member(host_org, member_id)
        except NotFound:
            pass
        for partner_org in self.partner_ids(host_org):
            try:
                return self._orgs.member(partner_org, member_id)
            except NotFound:
                continue
        raise NotFound(f"no member {member_id} in this organisation or its partners")

    def allows_tribes(self, host_org: str, partner_org: str) -> bool:
        """Whether the host's own partnership statement lets the partner's members into its tribes."""
        partnership = self.active(host_org, partner_org)
        return partnership is not None and partnership.allows_tribes(host_org)

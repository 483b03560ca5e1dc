"""Organisations (``ORG#o / META``) and their registry (``ORGS / ORG#o``), which operators and
the monthly jobs walk."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.paging import query_all
from chalicelib.domain.organisation import Organisation
from chalicelib.ports import Store

#: The fields services change: an update is written only if none of them moved since it was read.
WATCHED = ("plan", "plan_started_at", "pilot_end_choice", "retention_days", "name", "audit_days")


class OrganisationRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, org: Organisation) -> None:
        """The organisation (put if absent: ``ConditionFailed`` on a clash), then its registry entry."""
        self._store.put(keys.record(keys.org(org.org_id), org.model_dump(mode="json")), if_absent=True)
        self._store.put(keys.record(keys.org_registry(org.org_id), {"org_id": org.org_id}))

    def get(self, org_id: str) -> Organisation | None:
        item = self._store.get(*keys.org(org_id))
        return None if item is None else Organisation.model_validate(item)

    def save(self, org: Organisation) -> None:
        self._store.put(keys.record(keys.org(org.org_id), org.model_dump(mode="json")))

    def update(self, org_id: str, changes: Mapping[str, Any]) -> Organisation | None:
        """One read-change-write; None if there is no such organisation.

        Raises ``ConditionFailed`` if a ``WATCHED`` field changed between the read and the write
        (compared as stored: one absent then, a None, must still be absent).
        """
        item = self._store.get(*keys.org(org_id))
        if item is None:
            return None
        updated = Organisation.model_validate(item).model_copy(update=dict(changes))
        self._store.put(
            keys.record(keys.org(org_id), updated.model_dump(mode="json")),
            if_match={name: item.get(name) for name in WATCHED},
        )
        return updated

    def any_exists(self) -> bool:
        return bool(self._store.query(keys.ORGS_PK, limit=1).items)

    def ids(self) -> Iterator[str]:
        """Every organisation's id, from the registry, in id order."""
        for item in query_all(self._store, keys.ORGS_PK, keys.ORG_PREFIX):
            yield str(item["org_id"])

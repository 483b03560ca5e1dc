"""Pending clean-ups of ended partnerships (docs/protocol.md, 22.6), one per pair, with their
position: which side is being taken out, and the last channel done in that side's index.

An end request (a retry included) schedules the pair's clean-up unless one for the same end is
under way; a later end (after partnering again) restarts it, so a position is saved only while
it is still the latest end's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chalicelib.adapters.records import keys
from chalicelib.adapters.records.retention_jobs import delete_if_current, put_if_current
from chalicelib.ports import Item, Store

MAX_JOBS = 100


class PartnerEndJob(BaseModel):
    """``side`` 0 takes ``org_a``'s members out of ``org_b``'s channels, 1 the other way;
    ``after`` is the last channel of that side done; members added after ``ended_at`` stay."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    org_a: str
    org_b: str
    ended_at: int
    side: int = 0
    after: str | None = None

    def sides(self) -> list[tuple[str, str]]:
        """(host organisation, member organisation) in the order the job takes them."""
        return [(self.org_b, self.org_a), (self.org_a, self.org_b)]


class PartnerEndJobs:
    def __init__(self, store: Store) -> None:
        self._store = store

    def schedule(self, org_a: str, org_b: str, ended_at: int) -> PartnerEndJob:
        """The pair's clean-up for this end: the one under way, or a new one from the start."""
        low, high = sorted((org_a, org_b))
        existing = self._store.get(*keys.partner_end_job(low, high))
        if existing is not None and int(existing["ended_at"]) == ended_at:
            return _job(existing)
        job = PartnerEndJob(org_a=low, org_b=high, ended_at=ended_at)
        self._store.put(_item(job))
        return job

    def pending(self) -> list[PartnerEndJob]:
        page = self._store.query(keys.JOBS_PK, prefix=keys.PARTNER_END_PREFIX, limit=MAX_JOBS)
        return [_job(item) for item in page.items]

    def checkpoint(self, job: PartnerEndJob, side: int, after: str | None) -> PartnerEndJob | None:
        """The position saved, unless a later end restarted the pair's job (then None)."""
        moved = job.model_copy(update={"side": side, "after": after})
        return moved if put_if_current(self._store, _item(moved), "ended_at", job.ended_at) else None

    def finish(self, job: PartnerEndJob) -> None:
        """The job is done, unless a later end restarted it meanwhile."""
        delete_if_current(self._store, keys.partner_end_job(job.org_a, job.org_b), "ended_at", job.ended_at)


def _item(job: PartnerEndJob) -> Item:
    return keys.record(keys.partner_end_job(job.org_a, job.org_b), job.model_dump(mode="json"))


def _job(item: Item) -> PartnerEndJob:
    return PartnerEndJob.model_validate(item)

"""Pending retention jobs, one per scope (an organisation or a channel), with their position.

A newer setting for a scope replaces its job; the job saves its position after each page
only while it is still the latest request, so a superseded run stops instead of undoing it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chalicelib.adapters.records import keys
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Item, Store

MAX_JOBS = 100


class RetentionJob(BaseModel):
    """What to sweep (``channel_id``, or every channel of ``org_id``) and where it stopped.

    ``at`` is the channel being swept, ``step`` the kind of item within it (see
    ``records.expiring.SWEEP_ORDER``), ``cursor`` the page; ``uses`` is what the channel's
    sealed keys must outlive, learnt from the messages swept so far.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    scope: str
    org_id: str
    channel_id: str | None = None
    requested_at: int
    at: str | None = None
    step: int = 0
    cursor: str | None = None
    uses: dict[str, int] = {}


class RetentionJobs:
    def __init__(self, store: Store) -> None:
        self._store = store

    def schedule(self, scope: str, org_id: str, channel_id: str | None, requested_at: int) -> None:
        """(Re)start the scope's job from the beginning: a newer setting supersedes."""
        job = RetentionJob(scope=scope, org_id=org_id, channel_id=channel_id, requested_at=requested_at)
        self._store.put(_item(job))

    def pending(self) -> list[RetentionJob]:
        page = self._store.query(keys.JOBS_PK, prefix=keys.RETENTION_PREFIX, limit=MAX_JOBS)
        return [_job(item) for item in page.items]

    def checkpoint(
        self, job: RetentionJob, *, at: str, step: int, cursor: str | None, uses: dict[str, int]
    ) -> bool:
        """Save the position, unless a newer setting restarted the job meanwhile (then False)."""
        moved = job.model_copy(update={"at": at, "step": step, "cursor": cursor, "uses": dict(uses)})
        return put_if_current(self._store, _item(moved), "requested_at", job.requested_at)

    def finish(self, job: RetentionJob) -> None:
        """The job is done, unless a newer setting restarted it meanwhile."""
        delete_if_current(self._store, keys.retention_job(job.scope), "requested_at", job.requested_at)


def put_if_current(store: Store, item: Item, name: str, value: int) -> bool:
    """A job's new position, saved only while the stored job is still the same request (its
    ``name`` still ``value``); False when a newer request restarted it: that run takes over."""
    try:
        store.put(item, if_match={name: value})
    except ConditionFailed:
        return False
    return True


def delete_if_current(store: Store, key: tuple[str, str], name: str, value: int) -> None:
    """A finished job goes, unless a newer request restarted it meanwhile."""
    latest = store.get(*key)
    if latest is not None and latest.get(name) == value:
        store.delete(*key)


def _item(job: RetentionJob) -> Item:
    fields = job.model_dump(mode="json", exclude={"scope", "step"})
    return keys.record(keys.retention_job(job.scope), {**fields, "prefix_index": job.step})


def _job(item: Item) -> RetentionJob:
    scope = str(item["sk"]).removeprefix(keys.RETENTION_PREFIX)
    return RetentionJob.model_validate({**item, "scope": scope, "step": int(item.get("prefix_index") or 0)})

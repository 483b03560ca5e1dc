"""Retention settings, and the job that makes storage follow them.

Reads hide what the current retention forbids at once (messaging.read); this
job then re-stamps ``expires_at`` on what may live (so DynamoDB's TTL, or the
SQLite purge, removes it on time) and deletes what may not. It works in pages
and saves its position after each, so it resumes after a crash; every step is
recomputed from ``stored_at`` and the current setting, so a rerun is harmless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.expiring import SWEEP_ORDER, Expiring, ExpiringItem, ExpiringItems
from chalicelib.adapters.records.retention_jobs import RetentionJob, RetentionJobs
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY, describe, effective_days
from chalicelib.domain.roster import Epoch
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import KEY_GRACE_SECONDS, ChannelService
from chalicelib.services.organisations import OrganisationService
from chalicelib.services.shared_groups import SharedGroups

PAGE = 200


class BlobLifetimes(Protocol):
    """File blobs follow their messages' retention (services/files.py): their bytes live in an
    object store, so the job hands their records over rather than re-stamping them itself."""

    def follow_retention(self, days: int, items: list[dict[str, Any]]) -> tuple[int, int]: ...


@dataclass
class JobReport:
    jobs: int = 0
    pages: int = 0
    scanned: int = 0
    restamped: int = 0
    deleted: int = 0
    finished: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Outcome(Enum):
    """How a stretch of a job's work ended."""

    DONE = "done"
    STOPPED = "stopped"  # by a page or time limit: the position is saved, the job stays
    SUPERSEDED = "superseded"  # a newer setting restarted the job: that run takes over


@dataclass(frozen=True)
class Budget:
    """One run's limits, and its report: the pages it counts are what the limit is on."""

    report: JobReport
    max_pages: int
    deadline: float | None  # time.monotonic()

    def spent(self) -> bool:
        return self.report.pages >= self.max_pages or (
            self.deadline is not None and time.monotonic() >= self.deadline
        )


@dataclass(frozen=True)
class ChannelSweep:
    """One channel's walk: its retention, and what its sealed keys must outlive."""

    channel_id: str
    days: int
    usage: KeyUsage


class RetentionService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        channels: ChannelService,
        blobs: BlobLifetimes,
        shared: SharedGroups,
    ) -> None:
        self._shared = shared
        self._jobs = RetentionJobs(store)
        self._expiring = ExpiringItems(store)
        self._floors = ChannelRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._channels = channels
        self._blobs = blobs

    # -- settings ------------------------------------------------------------------------------

    def set_org(self, who: Principal, days: int) -> dict[str, Any]:
        org = self._orgs.set_retention(who, days)
        now = self._clock.now()
        # A partner's shared groups follow this setting too (22.6): sweeping a partner's channels
        # again is harmless, and finding only the shared ones would need another index.
        for org_id in (org.org_id, *self._shared.partner_ids(org.org_id)):
            self._jobs.schedule(org_id, org_id, None, now)
        return self.show_org(who)

    def set_channel(self, who: Principal, channel_id: str, days: int | None) -> dict[str, Any]:
        channel = self._channels.set_retention(who, channel_id, days)
        self._jobs.schedule(channel.channel_id, channel.org_id, channel.channel_id, self._clock.now())
        return self.show_channel(who, channel_id)

    def show_org(self, who: Principal) -> dict[str, Any]:
        org = self._orgs.get(who.org_id)
        return {
            "org_id": org.org_id,
            "retention_days": org.retention_days,
            "retention": describe(org.retention_days),
        }

    def show_channel(self, who: Principal, channel_id: str) -> dict[str, Any]:
        channel = self._channels.access(who, channel_id).channel
        org_days = self._channels.org_retention_days(channel)
        days = effective_days(org_days, channel.retention_days)
        return {
            "channel_id": channel_id,
            "channel_retention_days": channel.retention_days,
            "org_retention_days": org_days,
            "retention_days": days,
            "retention": describe(days),
        }

    # -- the job -------------------------------------------------------------------------------

    def run(self, *, max_pages: int = 1_000_000, deadline: float | None = None) -> JobReport:
        """Work through pending jobs until done, ``max_pages`` pages, or ``deadline`` (monotonic)."""
        budget = Budget(JobReport(), max_pages, deadline)
        for job in self._jobs.pending():
            budget.report.jobs += 1
            if self._run_job(job, budget) is Outcome.STOPPED:
                break
        return budget.report

    def _run_job(self, job: RetentionJob, budget: Budget) -> Outcome:
        """Channels go in id order, and in each the kinds of item in SWEEP_ORDER, so the saved
        position (channel, step, page cursor) says exactly where to resume.
        """
        channel_ids = [job.channel_id] if job.channel_id else self._channels.org_channel_ids(job.org_id)
        for channel_id in channel_ids:
            if job.at is not None and channel_id < job.at:
                continue
            outcome = self._sweep_channel(job, channel_id, budget)
            if outcome is not Outcome.DONE:
                return outcome
        self._jobs.finish(job)
        budget.report.finished.append(job.scope)
        return Outcome.DONE

    def _sweep_channel(self, job: RetentionJob, channel_id: str, budget: Budget) -> Outcome:
        channel = self._channels.find(channel_id)
        if channel is None:
            return Outcome.DONE
        resuming = channel_id == job.at
        usage = KeyUsage(self._channels.epoch(channel_id), dict(job.uses) if resuming else {})
        sweep = ChannelSweep(channel_id, self._channels.retention_days(channel), usage)
        for step in range(len(SWEEP_ORDER)):
            if resuming and step < job.step:
                continue
            cursor = job.cursor if resuming and step == job.step else None
            outcome = self._sweep_kind(job, sweep, step, cursor, budget)
            if outcome is not Outcome.DONE:
                return outcome
        return Outcome.DONE

    def _sweep_kind(
        self,
        job: RetentionJob,
        sweep: ChannelSweep,
        step: int,
        cursor: str | None,
        budget: Budget,
    ) -> Outcome:
        """Page through one kind of item, saving the position after each page."""
        while True:
            if budget.spent():
                return Outcome.STOPPED
            items, cursor = self._expiring.page(sweep.channel_id, SWEEP_ORDER[step], cursor, PAGE)
            self._apply(sweep, items, budget.report)
            budget.report.pages += 1
            saved = self._jobs.checkpoint(
                job, at=sweep.channel_id, step=step + (cursor is None), cursor=cursor, uses=sweep.usage.latest
            )
            if not saved:
                return Outcome.SUPERSEDED
            if cursor is None:
                return Outcome.DONE

    def _apply(self, sweep: ChannelSweep, items: list[ExpiringItem], report: JobReport) -> None:
        files = [x.item for x in items if x.kind is Expiring.FILE]
        if files:
            restamped, deleted = self._blobs.follow_retention(sweep.days, files)
            report.scanned += len(files)
            report.restamped += restamped
            report.deleted += deleted
            return
        now = self._clock.now()
        restamp: list[tuple[ExpiringItem, int]] = []
        delete: list[ExpiringItem] = []
        for item in items:
            report.scanned += 1
            due = (
                sweep.usage.key_due(item, sweep.days) if item.kind is Expiring.KEY else _due(item, sweep.days)
            )
            if due is None:
                continue
            if due <= now:
                delete.append(item)
                continue
            if item.kind is Expiring.MESSAGE:
                sweep.usage.used(item)
            if item.expires_at != due:
                restamp.append((item, due))
        self._expiring.apply(restamp, delete)
        deleted_seqs = [x.seq for x in delete if x.kind is Expiring.MESSAGE and x.seq is not None]
        if deleted_seqs:
            # Readers skip gaps below the floor at once: those numbers are not in flight.
            self._floors.raise_floor(sweep.channel_id, max(deleted_seqs))
        report.restamped += len(restamp)
        report.deleted += len(delete)


def _due(item: ExpiringItem, days: int) -> int | None:
    """When a message or id marker must be gone under ``days`` of retention (None: not ours)."""
    return None if item.stored_at is None else item.stored_at + days * DAY


@dataclass
class KeyUsage:
    """What a channel's sealed keys must outlive, learnt while its messages are scanned.

    A sender key opens every message its sender sent in that epoch, so its copy lives
    until the last of those messages expires. The current epoch's keys may still be used:
    they live until the latest moment the epoch can end (messaging rotates an epoch older
    than the retention) plus one retention.
    """

    current: Epoch
    latest: dict[str, int]  # "epoch#sender_device" -> the newest surviving message's stored_at

    def used(self, message: ExpiringItem) -> None:
        slot, stored_at = _slot(message), message.stored_at or 0
        self.latest[slot] = max(self.latest.get(slot, 0), stored_at)

    def key_due(self, key: ExpiringItem, days: int) -> int | None:
        if key.uploaded_at is None:
            return None
        window = days * DAY + KEY_GRACE_SECONDS
        last_message = self.latest.get(_slot(key))
        due = 0 if last_message is None else last_message + window
        if key.epoch == self.current.number:
            due = max(due, self.current.started_at + days * DAY + window)
        return due


def _slot(item: ExpiringItem) -> str:
    """Which sender key an item belongs to: its epoch and sender device."""
    return f"{item.epoch}#{item.sender_device}"

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
from typing import Any

from chalicelib.adapters.records import keys
from chalicelib.domain.channel import Channel
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY, describe, effective_days
from chalicelib.errors import ConditionFailed
from chalicelib.ports import Clock, Item, Store
from chalicelib.services.channels import KEY_GRACE_SECONDS, ChannelService, Epoch
from chalicelib.services.organisations import OrganisationService

PAGE = 200
PREFIXES = (keys.MESSAGE_PREFIX, keys.MARKER_PREFIX, keys.KEY_PREFIX)


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


class RetentionService:
    def __init__(
        self, store: Store, clock: Clock, orgs: OrganisationService, channels: ChannelService
    ) -> None:
        self._store = store
        self._clock = clock
        self._orgs = orgs
        self._channels = channels

    # -- settings ------------------------------------------------------------------------------

    def set_org(self, who: Principal, days: int) -> dict[str, Any]:
        org = self._orgs.set_retention(who, days)
        self._schedule(org.org_id, org.org_id, None)
        return self.show_org(who)

    def set_channel(self, who: Principal, channel_id: str, days: int | None) -> dict[str, Any]:
        channel = self._channels.set_retention(who, channel_id, days)
        self._schedule(channel.channel_id, channel.org_id, channel.channel_id)
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
        org_days = self._orgs.get(who.org_id).retention_days
        days = effective_days(org_days, channel.retention_days)
        return {
            "channel_id": channel_id,
            "channel_retention_days": channel.retention_days,
            "org_retention_days": org_days,
            "retention_days": days,
            "retention": describe(days),
        }

    def _schedule(self, scope: str, org_id: str, channel_id: str | None) -> None:
        """(Re)start the job for this scope from the beginning: a newer setting supersedes."""
        pk, sk = keys.retention_job(scope)
        self._store.put(
            {
                "pk": pk,
                "sk": sk,
                "org_id": org_id,
                "channel_id": channel_id,
                "requested_at": self._clock.now(),
            }
        )

    # -- the job -------------------------------------------------------------------------------

    def run(self, *, max_pages: int = 1_000_000, deadline: float | None = None) -> JobReport:
        """Work through pending jobs until done, ``max_pages`` pages, or ``deadline`` (monotonic)."""
        report = JobReport()
        for job in list(self._store.query(keys.JOBS_PK, prefix="RETENTION#", limit=100).items):
            report.jobs += 1
            if not self._run_job(job, report, max_pages, deadline):
                return report
        return report

    def _run_job(self, job: Item, report: JobReport, max_pages: int, deadline: float | None) -> bool:
        """Returns False when stopped by a limit (the job stays, with its position saved).

        Channels go in id order, and in each the prefixes in PREFIXES order, so the
        saved position (channel, prefix index, page cursor) says exactly where to resume.
        """
        at, start_index, saved_cursor = job.get("at"), int(job.get("prefix_index") or 0), job.get("cursor")
        channel_ids = (
            [job["channel_id"]] if job.get("channel_id") else self._channels.org_channel_ids(job["org_id"])
        )
        for channel_id in channel_ids:
            if at is not None and channel_id < at:
                continue
            item = self._store.get(*keys.channel(channel_id))
            if item is None:
                continue
            days = self._channels.retention_days(Channel.model_validate(item))
            resuming = channel_id == at
            usage = KeyUsage(
                self._channels.epoch(channel_id), dict(job.get("uses") or {}) if resuming else {}
            )
            for index, prefix in enumerate(PREFIXES):
                if resuming and index < start_index:
                    continue
                cursor = saved_cursor if resuming and index == start_index else None
                while True:
                    if report.pages >= max_pages or (deadline is not None and time.monotonic() >= deadline):
                        return False
                    page = self._store.query(f"CHAN#{channel_id}", prefix=prefix, cursor=cursor, limit=PAGE)
                    self._apply(page.items, days, report, usage)
                    report.pages += 1
                    cursor = page.cursor
                    position = {
                        "at": channel_id,
                        "prefix_index": index + (cursor is None),
                        "cursor": cursor,
                        "uses": usage.latest,
                    }
                    if not self._checkpoint(job, position):
                        return True  # superseded by a newer setting: that job takes over
                    if cursor is None:
                        break
        self._finish(job, report)
        return True

    def _raise_floor(self, channel_id: str, seq: int) -> None:
        """Record that messages up to ``seq`` were deleted, so readers skip those gaps at once."""
        pk, sk = keys.channel_floor(channel_id)
        while True:
            item = self._store.get(pk, sk)
            if item is not None and int(item["seq"]) >= seq:
                return
            condition: dict[str, Any] = {"if_match": {"seq": item["seq"]}} if item else {"if_absent": True}
            try:
                self._store.put({"pk": pk, "sk": sk, "seq": seq}, **condition)
                return
            except ConditionFailed:
                continue

    def _checkpoint(self, job: Item, position: dict[str, Any]) -> bool:
        """Save the position, unless a newer setting restarted the job meanwhile."""
        try:
            self._store.put({**job, **position}, if_match={"requested_at": job["requested_at"]})
        except ConditionFailed:
            return False
        return True

    def _finish(self, job: Item, report: JobReport) -> None:
        latest = self._store.get(job["pk"], job["sk"])
        if latest is not None and latest.get("requested_at") == job.get("requested_at"):
            self._store.delete(job["pk"], job["sk"])  # not superseded by a newer setting meanwhile
        report.finished.append(job["sk"].removeprefix("RETENTION#"))

    def _apply(self, items: list[Item], days: int, report: JobReport, usage: KeyUsage) -> None:
        now = self._clock.now()
        puts: list[Item] = []
        deletes: list[tuple[str, str]] = []
        for item in items:
            report.scanned += 1
            due = (
                usage.key_due(item, days) if str(item["sk"]).startswith(keys.KEY_PREFIX) else _due(item, days)
            )
            if due is None:
                continue
            if due <= now:
                deletes.append((item["pk"], item["sk"]))
                continue
            if str(item["sk"]).startswith(keys.MESSAGE_PREFIX):
                usage.used(item)
            if item.get("expires_at") != due:
                puts.append({**item, "expires_at": due})
        self._store.batch_write(puts=puts, deletes=deletes)
        deleted_seqs = [
            int(sk.removeprefix(keys.MESSAGE_PREFIX))
            for _, sk in deletes
            if sk.startswith(keys.MESSAGE_PREFIX)
        ]
        if deleted_seqs:
            self._raise_floor(deletes[0][0].removeprefix("CHAN#"), max(deleted_seqs))
        report.restamped += len(puts)
        report.deleted += len(deletes)


def _due(item: Item, days: int) -> int | None:
    """When a message or id marker must be gone under ``days`` of retention (None: not ours)."""
    if "stored_at" in item:
        return int(item["stored_at"]) + days * DAY
    return None


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

    def used(self, message: Item) -> None:
        slot = f"{message['epoch']}#{message['sender_device']}"
        self.latest[slot] = max(self.latest.get(slot, 0), int(message["stored_at"]))

    def key_due(self, key: Item, days: int) -> int | None:
        if "uploaded_at" not in key:
            return None
        window = days * DAY + KEY_GRACE_SECONDS
        last_message = self.latest.get(f"{key['epoch']}#{key['sender_device']}")
        due = 0 if last_message is None else last_message + window
        if int(key["epoch"]) == self.current.number:
            due = max(due, self.current.started_at + days * DAY + window)
        return due

"""An ended partnership's clean-up (docs/protocol.md, 22.6): each side's members leave the other's
channels, walked from the pair's index of shared memberships, never from the organisations.

Access is refused at the end itself (``SharedGroups``), so the clean-up may lag: the end's request
does what its time budget allows, and what is left stays a job with its position, finished by the
scheduled run (``jobs.run_retention``). Each channel loses all the ended side's members at once
and re-keys once; a rerun (a retried end, a job run twice) finds only what is left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.partner_ends import PartnerEndJob, PartnerEndJobs
from chalicelib.domain.events import PartnershipEnded
from chalicelib.ports import Store
from chalicelib.services.channels import ChannelService
from chalicelib.services.event_bus import EventBus

#: What an end's request spends on the clean-up before leaving the rest to the schedule: well
#: within API Gateway's 29 s, the end's own checks and writes included.
REQUEST_BUDGET_SECONDS = 10.0


@dataclass
class EndReport:
    jobs: int = 0
    channels: int = 0
    members: int = 0
    finished: list[str] = field(default_factory=list)


class PartnershipEnds:
    def __init__(
        self, store: Store, channels: ChannelService, request_budget: float = REQUEST_BUDGET_SECONDS
    ) -> None:
        self._jobs = PartnerEndJobs(store)
        self._index = ChannelRecords(store)
        self._channels = channels
        #: Seconds of clean-up an end's request does itself (tests set 0 to leave it all to the job).
        self.request_budget = request_budget

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(PartnershipEnded, self.ended)

    def ended(self, event: PartnershipEnded) -> None:
        """The end's request (and each retry) schedules the pair's job and works on it a while."""
        job = self._jobs.schedule(event.org_id, event.partner_org_id, event.ended_at)
        self._run_job(job, EndReport(), time.monotonic() + self.request_budget)

    def run(self, *, deadline: float | None = None) -> EndReport:
        """Work through the pending clean-ups until done or ``deadline`` (monotonic)."""
        report = EndReport()
        for job in self._jobs.pending():
            report.jobs += 1
            if not self._run_job(job, report, deadline):
                break
        return report

    def _run_job(self, job: PartnerEndJob, report: EndReport, deadline: float | None) -> bool:
        """True when the job is done or superseded by a later end; False when out of time."""
        sides = job.sides()
        current: PartnerEndJob | None = job
        while current is not None and current.side < len(sides):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            host_org, member_org = sides[current.side]
            found = self._index.next_shared_channel(host_org, member_org, current.after)
            if found is None:
                current = self._jobs.checkpoint(current, current.side + 1, None)
                continue
            channel_id, memberships = found
            # Members added after the end belong to a later partnership: they stay (and so does
            # ``partner_orgs``: what was written under the ended side's retention stays that short).
            ended = [m for m in memberships if m.added_at <= current.ended_at]
            self._channels.take_out(channel_id, ended, recheck=True)
            report.channels += bool(ended)
            report.members += len(ended)
            current = self._jobs.checkpoint(current, current.side, channel_id)
        if current is not None:
            self._jobs.finish(current)
            report.finished.append(f"{current.org_a}#{current.org_b}")
        return True

"""The scheduled-send job: at its time, a scheduled message is posted by its author.

The message (its deliveries and events) and the scheduled message's new status are written
in one transaction, so a worker that dies before its commit leaves nothing posted (the job runs
again after its lease), and one that dies after it leaves a job that finds the message sent and
does nothing. It is a write (Database.write), not the job's settle: posting emits events, which
only writers, taking turns, may do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.turn import ahead_of_requests
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.worker import JobKind, Settle
from jobchat.messages.actions import Limits
from jobchat.scheduling.actions import SCHEDULED_SEND_JOB
from jobchat.scheduling.requests import post_due


@dataclass
class ScheduledSender:
    db: Database
    settings: Settings
    clock: Clock

    def job_kinds(self) -> dict[str, JobKind]:
        return {SCHEDULED_SEND_JOB: JobKind(run=self.run)}

    async def run(self, job: Claimed) -> Settle | None:
        await asyncio.to_thread(self.post, int(job.payload["scheduled_id"]), job.id)
        return None

    def post(self, scheduled_id: int, job_id: int) -> None:
        with ahead_of_requests(), self.db.write() as session:
            post_due(
                session,
                scheduled_id,
                job_id,
                limits=Limits.of(self.settings),
                now=self.clock.now(),
            )

"""The scheduled-send job: at its time, a scheduled message is posted by its author.

The message (its deliveries and events) and the scheduled message's new status are written
in one transaction, so a worker that dies before its commit leaves nothing posted (the job runs
again after its lease), and one that dies after it leaves a job that finds the message sent and
does nothing. It is a write (Database.write), not the job's settle: posting emits events, which
only writers, taking turns, may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import Failure, JobKind, Settle
from jobchat.messages.actions import Limits
from jobchat.scheduling.actions import SCHEDULED_SEND_JOB
from jobchat.scheduling.requests import fail_due, post_due


@dataclass
class ScheduledSender:
    db: Database
    settings: Settings
    clock: Clock

    def job_kinds(self) -> dict[str, JobKind]:
        return {SCHEDULED_SEND_JOB: JobKind(run=self.run, on_failure=record_failure)}

    async def run(self, job: Claimed) -> Settle | None:
        await in_thread(self.post, int(job.payload["scheduled_id"]), job.id)
        return None

    def post(self, scheduled_id: int, job_id: int) -> None:
        with self.db.write() as session:
            post_due(
                session,
                scheduled_id,
                job_id,
                limits=Limits.of(self.settings),
                now=self.clock.now(),
            )


# Said to the author when the posting itself kept failing (not a refusal: those are recorded
# by post_due with their own reason), so the message does not wait forever in the past.
GAVE_UP = "It could not be sent because of a problem on our side; please send it again."


def record_failure(session: Session, job: Claimed, failure: Failure, now: datetime) -> None:
    """A job that failed for good marks its message failed (unless it was sent, cancelled or
    moved to another job meanwhile); an attempt that will be retried changes nothing."""
    if failure.final:
        fail_due(session, int(job.payload["scheduled_id"]), job.id, GAVE_UP, now=now)

"""The ``bulk.send`` job: posts a bulk message's messages a batch at a time.

Each batch is its own write transaction (the writer lock is let go between batches, so other
people's sends go in between). One job runs batches for about a second, then queues its
successor at the back of the queue and ends, so a bulk of 1,000 does not hold a worker slot,
or the queue, for long. A job that dies mid-way is taken up again when its lease runs out, and
resumes at the first recipient not yet marked.
"""

from __future__ import annotations

import time
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
from jobchat.scheduling.bulk.actions import BULK_JOB, Pacing, do_end_failed, do_send_batch

# Recipients per transaction: large enough that the per-transaction cost is spread, small
# enough that a sender waiting for the writer lock waits a fraction of a second.
BATCH = 50
# How long one job goes on before it hands over to a successor.
JOB_SECONDS = 1.0


@dataclass
class BulkRunner:
    db: Database
    settings: Settings
    clock: Clock

    def job_kinds(self) -> dict[str, JobKind]:
        return {BULK_JOB: JobKind(run=self.run, on_failure=record_bulk_failure)}

    async def run(self, job: Claimed) -> Settle | None:
        await in_thread(self._run, int(job.payload["bulk_id"]), int(job.payload["step"]))
        return None

    def _run(self, bulk_id: int, step: int) -> None:
        limits = Limits.of(self.settings)
        pacing = Pacing(batch=BATCH, sms_per_second=self.settings.sms_rate_per_second)
        until = time.monotonic() + JOB_SECONDS
        while True:
            hand_over = time.monotonic() >= until
            # An ordinary writer: a busy database (WriteBusy) gives the job back to the worker
            # to run again shortly, without counting a failed attempt.
            with self.db.write() as session:
                more = do_send_batch(
                    session,
                    bulk_id,
                    step,
                    limits=limits,
                    pacing=pacing,
                    hand_over=hand_over,
                    now=self.clock.now(),
                )
            if not more:
                return


def record_bulk_failure(session: Session, job: Claimed, failure: Failure, now: datetime) -> None:
    """A runner job that failed for good ends its bulk: otherwise it would stay sending
    forever, its pending recipients neither messaged nor told why."""
    if failure.final:
        do_end_failed(session, int(job.payload["bulk_id"]), int(job.payload["step"]), now=now)

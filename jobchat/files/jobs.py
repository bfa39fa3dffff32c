"""The worker's side of attachments: deleting stored objects (queued by
jobchat.files.actions) and sweeping the uploads no message took."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import exists, select

from jobchat.db.engine import Database
from jobchat.files.actions import REMOVE_FILES_JOB, SWEEP_BATCH, UNCLAIMED_FOR, sweep_unclaimed
from jobchat.files.models import Attachment
from jobchat.files.storage import Storage
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, Settle

# How often the worker looks for uploads no message took (they go after UNCLAIMED_FOR; an
# hour more or less does not matter).
SWEEP_EVERY_SECONDS = 3600.0


class FileRemover:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def job_kinds(self) -> dict[str, JobKind]:
        return {REMOVE_FILES_JOB: JobKind(run=self.remove)}

    async def remove(self, job: Claimed) -> Settle | None:
        # Deleting what is gone already is a success: a retried job finishes the rest.
        for key in job.payload["keys"]:
            await in_thread(self.storage.delete, str(key))
        return None


def unclaimed_sweeper(db: Database) -> Callable[[datetime], int]:
    """The periodic run: a read first (nothing due is the common case), then batches."""

    def run(now: datetime) -> int:
        with db.read() as session:
            due = session.scalar(
                select(
                    exists().where(
                        Attachment.message_id.is_(None),
                        Attachment.created_at < now - UNCLAIMED_FOR,
                    )
                )
            )
        if not due:
            return 0
        total = 0
        while True:
            with db.work() as session:
                swept = sweep_unclaimed(session, now)
            total += swept
            if swept < SWEEP_BATCH:
                return total

    return run

"""Queueing the ladder: one job per new message, written in the send's own transaction.

The send stays cheap (one INSERT); who is told of the message, how and when, the ladder job
(jobchat.notifications.ladder) works out in the worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from jobchat.db.engine import mark_jobs_written
from jobchat.jobqueue.models import JobStatus, QueuedJob

NOTIFY_JOB = "notify.message"

# The same row jobchat.jobqueue.actions.enqueue writes, with a statement prepared once instead
# of the unit of work (every send writes one; nothing reads the job back in the send).
_INSERT_JOB = insert(cast(Table, QueuedJob.__table__))


def enqueue_ladder(session: Session, message_id: int, now: datetime) -> None:
    session.connection().execute(
        _INSERT_JOB,
        {
            "kind": NOTIFY_JOB,
            "payload": {"message_id": message_id},
            "status": JobStatus.queued,
            "attempts": 0,
            "run_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    mark_jobs_written(session)

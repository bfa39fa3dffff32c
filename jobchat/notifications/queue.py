"""Queueing the ladder: one job per new message, written in the send's own transaction.

The send stays cheap (one INSERT); who is told of the message, how and when, the ladder job
(jobchat.notifications.ladder) works out in the worker.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.jobqueue.actions import enqueue

NOTIFY_JOB = "notify.message"


def enqueue_ladder(session: Session, message_id: int, now: datetime) -> None:
    enqueue(session, NOTIFY_JOB, {"message_id": message_id}, now=now)

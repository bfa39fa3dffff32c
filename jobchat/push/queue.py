"""Queueing a push: one job per message and subscription, written in the caller's transaction.

The notification ladder (jobchat.notifications) decides who is pushed; this is how it hands a
push to this channel. The job (jobchat.push.jobs) builds the payload when it runs, so a message
deleted meanwhile is never shown.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.jobqueue.actions import enqueue

PUSH_JOB = "push.send"


def enqueue_push(
    session: Session, *, user_id: int, subscription_id: int, message_id: int, now: datetime
) -> None:
    """``user_id``: whom the push was decided for. A subscription another user takes over
    (the same browser, someone else signed in) before the job runs gets nothing from it."""
    payload = {"user_id": user_id, "subscription_id": subscription_id, "message_id": message_id}
    enqueue(session, PUSH_JOB, payload, now=now)

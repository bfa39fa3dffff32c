"""The email rung: turning due email-notification clocks into email jobs (a periodic sweep).

The email itself is composed and sent by the email channel (jobchat.mail.outbound); this only
decides when it is due. Email keeps its own delay and batching, and ignores quiet hours.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from jobchat.conversations.models import Member
from jobchat.jobqueue.actions import enqueue
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.mail.outbound import NOTIFICATION_JOB
from jobchat.notifications.queue import NOTIFY_JOB


def do_queue_due_notifications(session: Session, *, now: datetime) -> int:
    """Queue one notification job per member whose clock ran out with something unread.

    The clock is cleared in the same statement that reads it, so that two workers sweeping at
    once cannot both queue it; the job decides what is still unread when it runs.
    """
    due = session.execute(
        update(Member)
        .where(Member.notify_due_at <= now)
        .values(notify_due_at=None)
        .returning(Member.conversation_id, Member.user_id, Member.unread_count)
        .execution_options(synchronize_session=False)
    ).all()
    queued = 0
    for conversation_id, user_id, unread in sorted(due):
        if unread > 0:
            enqueue(
                session,
                NOTIFICATION_JOB,
                {"conversation_id": conversation_id, "user_id": user_id},
                now=now,
            )
            queued += 1
    return queued


def do_forget_due_notifications(session: Session) -> int:
    """Stop every pending notification: for history that is not news (the demo's two weeks of
    made-up messages), about which nobody should get an email, a push or a text."""
    session.execute(
        delete(QueuedJob)
        .where(QueuedJob.kind == NOTIFY_JOB, QueuedJob.status == JobStatus.queued)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Member)
        .where(Member.sms_due_at.is_not(None))
        .values(sms_due_at=None)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Member)
        .where(Member.notify_due_at.is_not(None))
        .values(notify_due_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

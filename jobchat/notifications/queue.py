"""Queueing the ladder: one job per new message that someone could be told of by push or text,
written in the send's own transaction.

The send stays cheap (a question it asks with others, and one INSERT when it finds someone); who is
told of the message, how and when, the ladder job (jobchat.notifications.ladder) works out in the
worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, exists, insert, or_
from sqlalchemy.orm import Session

from jobchat.conversations.models import Member
from jobchat.db.engine import mark_jobs_written
from jobchat.db.prepared import Prepared
from jobchat.directory.models import User, UserKind
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.push.queries import subscribed_before

NOTIFY_JOB = "notify.message"

# The same row jobchat.jobqueue.actions.enqueue writes, with a statement prepared once instead
# of the unit of work (every send writes one; nothing reads the job back in the send).
_JOBS = cast(Table, QueuedJob.__table__)
_JOB_COLUMNS = ("kind", "payload", "status", "attempts", "run_at", "created_at", "updated_at")
_INSERT_JOB = Prepared(
    insert(_JOBS).values(
        {name: bindparam(f"b_{name}", type_=_JOBS.c[name].type) for name in _JOB_COLUMNS}
    )
)

# Whether the ladder could do anything for a message: a member other than its author who is
# active and has push on with a device subscribed before it, or a candidate who takes texts.
# It is what the ladder's own queries require before anything else (it then also checks who
# has read or hidden it, who has the app open, quiet hours, whether a number can be texted):
# when nobody qualifies the job would only be claimed, find nothing to do and be settled, which
# cost a send more server CPU than everything else in it together (bench/bench_send.py).
# Parameters: conversation_id, author_id (0 for none), before (the message's time). The send
# asks it in a statement of its own that asks about webhooks too (jobchat.messages.audience).
ANYONE_TO_TELL = exists().where(
    Member.conversation_id == bindparam("conversation_id"),
    Member.user_id != bindparam("author_id"),
    User.id == Member.user_id,
    User.deactivated_at.is_(None),
    or_(
        and_(
            User.push_notifications.is_(True),
            subscribed_before(User.id, bindparam("before", type_=Member.joined_at.type)),
        ),
        and_(User.kind == UserKind.candidate, User.sms_notifications.is_(True)),
    ),
)


def enqueue_ladder(session: Session, message_id: int, now: datetime) -> None:
    """Queue the ladder job of a message sent at ``now``: for a message that someone could be
    pushed or texted about (``ANYONE_TO_TELL``; email's clock is started by the send itself)."""
    _INSERT_JOB.run(
        session.connection(),
        {
            "b_kind": NOTIFY_JOB,
            "b_payload": {"message_id": message_id},
            "b_status": JobStatus.queued,
            "b_attempts": 0,
            "b_run_at": now,
            "b_created_at": now,
            "b_updated_at": now,
        },
    )
    mark_jobs_written(session)

"""Scheduling, moving, cancelling and posting scheduled messages: the only code that writes
them. Each change that moves when one is posted queues its job in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.errors import Conflict, Invalid
from jobchat.jobqueue.actions import enqueue
from jobchat.messages.actions import Outgoing
from jobchat.messages.models import Message
from jobchat.scheduling.models import ScheduledMessage, ScheduledStatus
from jobchat.scheduling.queries import by_idempotency_key

SCHEDULED_SEND_JOB = "scheduled.send"
MAX_AHEAD = timedelta(days=365)


def send_time(send_at: datetime, now: datetime) -> datetime:
    """``send_at`` in UTC (a time without an offset is taken as UTC), if it is in the future
    and at most a year ahead; 422 naming ``send_at`` otherwise."""
    moment = as_utc(send_at)
    if moment <= now:
        raise Invalid({"send_at": "must be in the future"})
    if moment > now + MAX_AHEAD:
        raise Invalid({"send_at": "may be at most a year ahead"})
    return moment


def as_utc(moment: datetime) -> datetime:
    """A time without an offset is UTC."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise Invalid({"send_at": "is out of range"}) from None


def message_key(scheduled_id: int) -> str:
    """The idempotency key of the message a scheduled one is posted as: should the status
    ever not have been written with it, a second post finds the first instead of repeating it."""
    return f"scheduled-message:{scheduled_id}"


def do_schedule(
    session: Session,
    *,
    author: User,
    conversation_id: int,
    out: Outgoing,
    send_at: datetime,
    request_hash: str,
    now: datetime,
) -> tuple[ScheduledMessage, bool]:
    """Store a message to be posted at ``send_at`` (checked by the caller) and queue its job:
    (the scheduled message, whether it was a retry of an earlier request with the same key)."""
    if out.idempotency_key is not None:
        earlier = by_idempotency_key(session, author.id, out.idempotency_key)
        if earlier is not None:
            return replay_scheduled(earlier, request_hash), True
    row = ScheduledMessage(
        author_id=author.id,
        author=author,
        conversation_id=conversation_id,
        body=out.body.strip(),
        subject=(out.subject or "").strip() or None,
        channel=out.channel,
        send_at=send_at,
        status=ScheduledStatus.scheduled,
        idempotency_key=out.idempotency_key,
        request_hash=request_hash,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key stored it first.
        earlier = (
            by_idempotency_key(session, author.id, out.idempotency_key)
            if out.idempotency_key is not None
            else None
        )
        if earlier is None:
            raise
        return replay_scheduled(earlier, request_hash), True
    _queue(session, row, now)
    return row, False


def replay_scheduled(earlier: ScheduledMessage, request_hash: str) -> ScheduledMessage:
    """The earlier scheduled message, if this retry asks for what it first asked for (409
    otherwise). Compared with the request as first made: the author may have edited it since."""
    if earlier.request_hash is not None and earlier.request_hash != request_hash:
        raise Conflict(
            "This idempotency key was already used for a different scheduled message.",
            code="idempotency_key_reused",
        )
    return earlier


def _queue(session: Session, row: ScheduledMessage, now: datetime) -> None:
    job = enqueue(
        session, SCHEDULED_SEND_JOB, {"scheduled_id": row.id}, now=now, run_at=row.send_at
    )
    session.flush()
    row.job_id = job.id


_NO_LONGER = {
    ScheduledStatus.sent: "This message was sent already",
    ScheduledStatus.failed: "This message could not be sent (its reason says why)",
    ScheduledStatus.cancelled: "This message was cancelled",
}


def check_scheduled(row: ScheduledMessage) -> None:
    """409 once it has been sent, has failed or was cancelled: only a waiting one changes."""
    if row.status != ScheduledStatus.scheduled:
        raise Conflict(
            f"{_NO_LONGER[ScheduledStatus(row.status)]}: it can no longer be changed.",
            code=f"scheduled_{row.status}",
        )


def do_reschedule(
    session: Session,
    row: ScheduledMessage,
    *,
    send_at: datetime,
    body: str,
    subject: str | None,
    now: datetime,
) -> None:
    """Change a waiting message (checked by the caller). A new time gets a new job; the old
    job, when its time comes, finds that it is no longer the message's job and does nothing,
    so it can neither post early nor post a second time."""
    row.body = body.strip()
    row.subject = (subject or "").strip() or None
    row.updated_at = now
    if send_at != row.send_at:
        row.send_at = send_at
        _queue(session, row, now)


def do_cancel(row: ScheduledMessage, *, now: datetime) -> None:
    row.status = ScheduledStatus.cancelled
    row.updated_at = now


def do_mark_sent(row: ScheduledMessage, message: Message, *, now: datetime) -> None:
    row.status = ScheduledStatus.sent
    row.message_id = message.id
    row.reason = None
    row.updated_at = now


def do_mark_failed(row: ScheduledMessage, reason: str, *, now: datetime) -> None:
    row.status = ScheduledStatus.failed
    row.reason = reason
    row.updated_at = now

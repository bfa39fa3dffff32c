"""A user's scheduled message, whichever way it came in (the API or a page's form), and the
worker's posting of it: the access checks in their order, then the action."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Conversation
from jobchat.db.undo import undo_on_rollback
from jobchat.directory.models import User
from jobchat.errors import AppError, Conflict, Invalid, NotFound
from jobchat.messages.actions import Limits, Outgoing, check_outgoing, do_send_message
from jobchat.messages.models import Channel, Message
from jobchat.ratelimit import RateLimiter
from jobchat.scheduling.actions import (
    as_utc,
    check_scheduled,
    do_cancel,
    do_mark_failed,
    do_mark_sent,
    do_reschedule,
    do_schedule,
    message_key,
    replay_scheduled,
    send_time,
)
from jobchat.scheduling.models import ScheduledMessage, ScheduledStatus
from jobchat.scheduling.queries import access_scheduled, by_idempotency_key, locked, pending_count
from jobchat.scheduling.schemas import ScheduledOut

# Keys the service gives its own messages (a scheduled one posted, a bulk message's copies): a
# client's key with one of these could collide with them, and so replay a message it never sent.
RESERVED_KEY_PREFIXES = ("scheduled-message:", "jobchat-bulk:")


def check_client_key(key: str | None) -> None:
    """422 naming ``idempotency_key`` when a client's key uses a reserved prefix."""
    if key is not None and key.startswith(RESERVED_KEY_PREFIXES):
        raise Invalid(
            {"idempotency_key": f"may not start with {' or '.join(RESERVED_KEY_PREFIXES)}"}
        )


def request_hash(conversation_id: int, send_at: datetime, fields: dict[str, Any]) -> str:
    """A digest of a schedule request as made (before any template is filled in): what a
    retry with the same key must match."""
    data = {"conversation": conversation_id, "send_at": as_utc(send_at).isoformat(), **fields}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def schedule_as(
    session: Session,
    user: User,
    conversation_id: int,
    out: Outgoing,
    *,
    send_at: datetime,
    limiter: RateLimiter,
    limits: Limits,
    max_pending: int,
    now: datetime,
    fingerprint: str | None = None,
) -> tuple[ScheduledOut, bool]:
    """Schedule a message into a conversation the user may post in now, checked as a send
    would be (404, 409, 422, 429, and 409 too_many_scheduled past ``max_pending`` waiting):
    (the scheduled message, whether it was a retry answered with the first). ``fingerprint``
    is what a retry is compared with (by default, the message itself)."""
    check_client_key(out.idempotency_key)
    conv, _member = access.access_conversation(session, user, conversation_id)
    key = out.idempotency_key
    print_ = fingerprint or request_hash(
        conv.id,
        send_at,
        {"body": out.body, "channel": str(out.channel), "subject": out.subject},
    )
    earlier = by_idempotency_key(session, user.id, key) if key is not None else None
    if earlier is not None:
        # A retry of a request that was stored answers with it, even if its time has passed or
        # the conversation was ended since (as a retried send does).
        return ScheduledOut.of(replay_scheduled(earlier, print_)), True
    moment = send_time(send_at, now)
    access.check_post(user, conv)
    undo_on_rollback(session, limiter.take(user.id))
    if pending_count(session, user.id) >= max_pending:
        raise Conflict(
            f"You have {max_pending} messages waiting to be sent, the most one may have: "
            "send or cancel some first.",
            code="too_many_scheduled",
        )
    check_outgoing(session, user, conv, out, limits)
    row, replayed = do_schedule(
        session,
        author=user,
        conversation_id=conv.id,
        out=out,
        send_at=moment,
        request_hash=print_,
        now=now,
    )
    return ScheduledOut.of(row), replayed


def update_as(
    session: Session,
    user: User,
    scheduled_id: int,
    *,
    send_at: datetime | None,
    body: str | None,
    subject: str | None,
    subject_given: bool,
    limiter: RateLimiter,
    limits: Limits,
    now: datetime,
) -> ScheduledOut:
    """Change a waiting message's time, text or subject: checked again as a send would be.
    Moving it counts against the send rate: each move queues a job, as a new message does."""
    row = access_scheduled(session, user, scheduled_id)
    check_scheduled(row)
    moment = send_time(send_at, now) if send_at is not None else row.send_at
    if moment != row.send_at:
        undo_on_rollback(session, limiter.take(user.id))
    text = body if body is not None else row.body
    new_subject = subject if subject_given else row.subject
    conv = _postable(session, user, row)
    check_outgoing(
        session,
        user,
        conv,
        Outgoing(body=text, channel=Channel(row.channel), subject=new_subject),
        limits,
    )
    do_reschedule(session, row, send_at=moment, body=text, subject=new_subject, now=now)
    return ScheduledOut.of(row)


def _postable(session: Session, user: User, row: ScheduledMessage) -> Conversation:
    """The conversation, if its author may still post there; 409 saying why not."""
    try:
        conv, _member = access.access_conversation(session, user, row.conversation_id)
    except NotFound:
        raise Conflict(
            "You are no longer a member of this conversation.", code="not_a_member"
        ) from None
    access.check_post(user, conv)
    return conv


def cancel_as(session: Session, user: User, scheduled_id: int, *, now: datetime) -> None:
    row = access_scheduled(session, user, scheduled_id)
    check_scheduled(row)
    do_cancel(row, now=now)


def post_due(
    session: Session, scheduled_id: int, job_id: int, *, limits: Limits, now: datetime
) -> ScheduledMessage | None:
    """The worker's part: post a due message as its author, through the same send code, in
    the transaction that also records it as sent (so a crash either did both or neither).
    Where the author may no longer post there it fails, with the reason. Nothing happens for
    a message that was cancelled, sent already, or moved to another time (another job)."""
    row = locked(session, scheduled_id)
    if row is None or row.status != ScheduledStatus.scheduled or row.job_id != job_id:
        return None
    try:
        with session.begin_nested():
            message = _post(session, row, limits, now)
    except AppError as exc:
        do_mark_failed(row, failure_reason(exc), now=now)
    else:
        do_mark_sent(row, message, now=now)
    return row


def fail_due(
    session: Session, scheduled_id: int, job_id: int, reason: str, *, now: datetime
) -> None:
    """Mark a message failed when its job gave up, if it is still waiting for that job."""
    row = locked(session, scheduled_id)
    if row is not None and row.status == ScheduledStatus.scheduled and row.job_id == job_id:
        do_mark_failed(row, reason, now=now)


def _post(session: Session, row: ScheduledMessage, limits: Limits, now: datetime) -> Message:
    author = row.author
    if not author.is_active:
        raise Conflict("Your account was deactivated before it was due.", code="deactivated")
    conv, member = access.access_conversation(session, author, row.conversation_id)

    def admit() -> None:
        access.check_post(author, conv)

    message, _replayed = do_send_message(
        session,
        actor=author,
        conv=conv,
        member=member,
        out=Outgoing(
            body=row.body,
            channel=Channel(row.channel),
            subject=row.subject,
            idempotency_key=message_key(row.id),
        ),
        limits=limits,
        now=now,
        admit=admit,
    )
    return message


def failure_reason(exc: AppError) -> str:
    """Why it was not posted, in words for its author."""
    if isinstance(exc, NotFound):
        return "You are no longer a member of this conversation."
    if isinstance(exc, Invalid) and exc.fields:
        detail = "; ".join(exc.fields.values())
        return f"It could not be sent: {detail}."
    return exc.message

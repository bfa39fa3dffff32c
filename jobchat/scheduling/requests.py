"""A user's scheduled message, whichever way it came in (the API or a page's form), and the
worker's posting of it: the access checks in their order, then the action."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Conversation
from jobchat.directory.models import User
from jobchat.errors import AppError, Conflict, Invalid, NotFound
from jobchat.messages.actions import Limits, Outgoing, check_outgoing, do_send_message
from jobchat.messages.models import Channel, Message
from jobchat.scheduling.actions import (
    as_utc,
    check_scheduled,
    do_cancel,
    do_mark_failed,
    do_mark_sent,
    do_reschedule,
    do_schedule,
    message_key,
    send_time,
)
from jobchat.scheduling.models import ScheduledMessage, ScheduledStatus
from jobchat.scheduling.queries import by_idempotency_key, locked
from jobchat.scheduling.schemas import ScheduledOut


def schedule_as(
    session: Session,
    user: User,
    conversation_id: int,
    out: Outgoing,
    *,
    send_at: datetime,
    limits: Limits,
    now: datetime,
) -> ScheduledOut:
    """Schedule a message into a conversation the user may post in now, checked as a send
    would be (404, 409, 422); a retry with the same idempotency key answers with the first."""
    conv, _member = access.access_conversation(session, user, conversation_id)
    key = out.idempotency_key
    if key is not None and by_idempotency_key(session, user.id, key) is not None:
        # A retry of a request that was stored answers with it, even if its time has passed or
        # the conversation was ended since (as a retried send does).
        moment = as_utc(send_at)
    else:
        moment = send_time(send_at, now)
        access.check_post(user, conv)
        check_outgoing(session, user, conv, out, limits)
    row, _replayed = do_schedule(
        session, author=user, conversation_id=conv.id, out=out, send_at=moment, now=now
    )
    return ScheduledOut.of(row)


def update_as(
    session: Session,
    user: User,
    scheduled_id: int,
    *,
    send_at: datetime | None,
    body: str | None,
    subject: str | None,
    subject_given: bool,
    limits: Limits,
    now: datetime,
) -> ScheduledOut:
    """Change a waiting message's time, text or subject: checked again as a send would be."""
    row = access.access_scheduled(session, user, scheduled_id)
    check_scheduled(row)
    moment = send_time(send_at, now) if send_at is not None else row.send_at
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
    row = access.access_scheduled(session, user, scheduled_id)
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

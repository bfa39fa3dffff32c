"""A user's post into a conversation, as the API's send endpoint takes it: now or later,
written or from a template, and a retry with the same idempotency key answered with what the
first stored. Here rather than in messages: it both sends and schedules, and messages must not
know about scheduling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Conversation, Member
from jobchat.directory.models import User
from jobchat.errors import Conflict, Invalid
from jobchat.messages.actions import Limits, Outgoing
from jobchat.messages.models import Message
from jobchat.messages.queries import sent_with_key
from jobchat.messages.requests import send_as
from jobchat.messages.schemas import SendMessageIn
from jobchat.ratelimit import RateLimiter
from jobchat.scheduling.actions import replay_scheduled
from jobchat.scheduling.queries import by_idempotency_key
from jobchat.scheduling.requests import check_client_key, request_hash, schedule_as
from jobchat.scheduling.schemas import ScheduledOut
from jobchat.templates.requests import fill_for_send, usable_template


@dataclass(frozen=True)
class Posted:
    """A message sent now, or one scheduled, and whether it answered a retry."""

    message: Message | None
    scheduled: ScheduledOut | None
    replayed: bool


def post_as(
    session: Session,
    user: User,
    conversation_id: int,
    request: SendMessageIn,
    *,
    limiter: RateLimiter,
    limits: Limits,
    max_scheduled: int,
    now: datetime,
    accessed: tuple[Conversation, Member] | None = None,
) -> Posted:
    """Send or schedule (``send_at``) a message, filling in a template where one is named.

    A retry with an idempotency key already used is answered from what was stored before
    anything is filled in: the template may have been edited or deleted since, and a scheduled
    message edited, without the retry becoming a conflict. ``accessed``: what
    ``access.access_conversation`` answered for this user and conversation earlier in the same
    transaction, if the caller asked it already."""
    key = request.idempotency_key
    check_client_key(key)
    fingerprint = request_hash(
        conversation_id,
        request.send_at if request.send_at is not None else now,
        {
            "body": request.body,
            "channel": str(request.channel),
            "subject": request.subject,
            "template": request.template,
        },
    )
    if key is not None:
        replay = _replay(session, user, conversation_id, request, key, fingerprint, accessed)
        if replay is not None:
            return replay
    conv, member = accessed or access.access_conversation(session, user, conversation_id)
    text, subject = request.body, request.subject
    if request.template is not None:
        filled = fill_for_send(
            usable_template(session, user, request.template),
            conv,
            user,
            channel=request.channel,
            body=text,
            subject=subject,
        )
        text, subject = filled.body, filled.subject
    if text is None:
        if not request.attachments:
            raise Invalid({"body": "is required (or give a template)"})
        text = ""  # files alone make a message
    out = Outgoing(
        body=text,
        channel=request.channel,
        subject=subject,
        idempotency_key=key,
        attachments=tuple(request.attachments),
    )
    if request.send_at is not None:
        if out.attachments:
            raise Invalid({"attachments": "attachments cannot be scheduled yet; send them now"})
        scheduled, replayed = schedule_as(
            session,
            user,
            conversation_id,
            out,
            send_at=request.send_at,
            limiter=limiter,
            limits=limits,
            max_pending=max_scheduled,
            now=now,
            fingerprint=fingerprint,
        )
        return Posted(None, scheduled, replayed)
    message, replayed = send_as(
        session,
        user,
        conversation_id,
        out,
        limiter=limiter,
        limits=limits,
        now=now,
        accessed=(conv, member),
    )
    return Posted(message, None, replayed)


def _replay(
    session: Session,
    user: User,
    conversation_id: int,
    request: SendMessageIn,
    key: str,
    fingerprint: str,
    accessed: tuple[Conversation, Member] | None,
) -> Posted | None:
    """What an earlier request with this key stored, if this one asks for the same (409 if
    not); None when the key is new."""
    message = sent_with_key(session, user.id, key)
    scheduled = by_idempotency_key(session, user.id, key) if message is None else None
    if message is None and scheduled is None:
        return None
    if accessed is None:
        access.access_conversation(session, user, conversation_id)
    if message is not None:
        # A sent message keeps only its filled-in text: a request naming a template is compared
        # by where and how it went; a written one by its text too.
        same = (
            request.send_at is None
            and message.conversation_id == conversation_id
            and message.channel == request.channel
            and (
                request.template is not None
                or (
                    message.body == (request.body or "").strip()
                    and message.subject == ((request.subject or "").strip() or None)
                )
            )
            and [a.id for a in message.attachments] == request.attachments
        )
        if not same:
            raise _reused()
        return Posted(message, None, True)
    assert scheduled is not None
    if request.send_at is None or scheduled.conversation_id != conversation_id:
        raise _reused()
    return Posted(None, ScheduledOut.of(replay_scheduled(scheduled, fingerprint)), True)


def _reused() -> Conflict:
    return Conflict(
        "This idempotency key was already used for a different message.",
        code="idempotency_key_reused",
    )

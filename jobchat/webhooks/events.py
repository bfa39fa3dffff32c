"""The hooks the existing actions call, one line each, to report what they did.

Each names the ids the event is about (kept as columns, for ordering and for erasure) and
hands ``emit`` a builder of its ``data``, run only when some webhook takes the event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, Text
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from jobchat.conversations.models import Conversation
from jobchat.directory.models import User, UserKind
from jobchat.messages.models import Delivery, Message
from jobchat.webhooks import payloads
from jobchat.webhooks.actions import emit, scrub_message
from jobchat.webhooks.models import EventType, Webhook
from jobchat.webhooks.queries import subscribed

_WEBHOOKS = cast(Table, Webhook.__table__)
# What ``subscribed`` asks, as plain columns run on the driver's cursor (jobchat.db.prepared):
# every send asks it (jobchat.messages.audience, with another question in the same statement),
# and through the ORM building and running the query cost a send more than the query itself.
# The list of events comes as its JSON text, parsed by ``takers``.
ENABLED_COLUMNS = (_WEBHOOKS.c.id, cast_(_WEBHOOKS.c.events, Text))
ENABLED = _WEBHOOKS.c.disabled_at.is_(None)


def takers(enabled: Iterable[tuple[int, str]], type: EventType) -> list[int]:
    """Of the enabled webhooks, (id, events as JSON text) each, those that take ``type``."""
    return [id for id, events in enabled if type in json.loads(events)]


def _candidate_of(conv: Conversation, *people: User | None) -> int | None:
    """The candidate an event is about: the conversation's, else a candidate taking part."""
    if conv.candidate_id is not None:
        return conv.candidate_id
    return next((p.id for p in people if p is not None and p.kind == UserKind.candidate), None)


def message_scrubbed(session: Session, message: Message) -> None:
    """Deleted for everyone: its words leave the queued and logged deliveries too."""
    scrub_message(session, message.id)


def message_created(
    session: Session,
    message: Message,
    conv: Conversation,
    now: datetime,
    *,
    enabled: Iterable[tuple[int, str]],
) -> None:
    """``enabled``: the webhooks enabled, read by the send in its transaction (``ENABLED``)."""
    hooks = takers(enabled, EventType.message_created)
    if not hooks:
        return  # the common case, on every send
    emit(
        session,
        EventType.message_created,
        lambda: payloads.message_created(message, conv),
        now=now,
        conversation_id=conv.id,
        message_id=message.id,
        candidate_id=_candidate_of(conv, message.author),
        hooks=hooks,
    )


def message_deleted(
    session: Session, message: Message, conv: Conversation, by: User, now: datetime
) -> None:
    emit(
        session,
        EventType.message_deleted,
        lambda: payloads.message_deleted(message, conv, by),
        now=now,
        conversation_id=conv.id,
        message_id=message.id,
        candidate_id=_candidate_of(conv, message.author),
    )


def conversation_created(
    session: Session, conv: Conversation, by: User | None, now: datetime
) -> None:
    _conversation(session, EventType.conversation_created, conv, "created_by", by, now)


def conversation_ended(session: Session, conv: Conversation, by: User, now: datetime) -> None:
    _conversation(session, EventType.conversation_ended, conv, "ended_by", by, now)


def conversation_reopened(session: Session, conv: Conversation, by: User, now: datetime) -> None:
    _conversation(session, EventType.conversation_reopened, conv, "reopened_by", by, now)


def _conversation(
    session: Session,
    type: EventType,
    conv: Conversation,
    role: str,
    by: User | None,
    now: datetime,
) -> None:
    emit(
        session,
        type,
        lambda: payloads.conversation_changed(conv, role, by),
        now=now,
        conversation_id=conv.id,
        candidate_id=_candidate_of(conv),
    )


def delivery_changed(session: Session, delivery: Delivery, now: datetime) -> None:
    """An email or text was sent, delivered, not delivered, failed or bounced."""
    hooks = subscribed(session, EventType.message_delivery)
    if not hooks:
        return  # the common case: no need to load the message and its conversation
    message = session.get_one(Message, delivery.message_id)
    conv = session.get_one(Conversation, message.conversation_id)
    emit(
        session,
        EventType.message_delivery,
        lambda: payloads.message_delivery(delivery, message, conv),
        now=now,
        conversation_id=conv.id,
        message_id=message.id,
        candidate_id=delivery.recipient_id,
        hooks=hooks,
    )


def sms_consent_changed(
    session: Session,
    candidate: User,
    source: str,
    detail: str | None,
    by: User | None,
    now: datetime,
) -> None:
    emit(
        session,
        EventType.candidate_sms_consent,
        lambda: payloads.sms_consent(candidate, source, detail, by),
        now=now,
        candidate_id=candidate.id,
    )

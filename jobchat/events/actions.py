"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Table, and_, delete, func, insert, select
from sqlalchemy.orm import Session

from jobchat.conversations.models import Member
from jobchat.conversations.unread import unread_extra
from jobchat.db.engine import mark_events_queued, mark_events_written
from jobchat.directory.models import User
from jobchat.events.models import Event, EventHorizon, EventType, QueuedEvent
from jobchat.events.queries import latest_event_id
from jobchat.events.sequencer import sequence

_TIME = TypeAdapter(datetime)


def json_time(at: datetime) -> Any:
    """A time as the API writes it."""
    return _TIME.dump_python(at, mode="json")


def emit(
    session: Session,
    type_: EventType,
    *,
    now: datetime,
    conversation_id: int | None = None,
    user_id: int | None = None,
    message_id: int | None = None,
    data: dict[str, Any] | None = None,
    extras: dict[int, dict[str, Any]] | None = None,
) -> None:
    """Insert an event row in the caller's transaction, at once.

    Event ids must become visible in increasing order, or a client resuming "after 8" would miss
    a 7 committed later. SQLite has one writer at a time, and the row goes into ``events``. On
    PostgreSQL writers into different conversations commit side by side, so it goes into the
    queue, and ``Database.write`` numbers it once the transaction has committed
    (``jobchat.events.sequencer``); either way the real-time stream is woken after the commit.

    The row goes in with one prepared statement rather than through the ORM's unit of work (a
    send writes one or two, and the unit of work cost more than the insert); what it refers to
    (a message, a member just added) is flushed first.
    """
    if session.new:
        session.flush()
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    connection.execute(
        _INSERT_EVENT if sqlite else _QUEUE_EVENT,
        {
            "type": type_,
            "conversation_id": conversation_id,
            "user_id": user_id,
            "message_id": message_id,
            "data": data or {},
            "extras": {str(uid): extra for uid, extra in extras.items()} if extras else None,
            "created_at": now,
        },
    )
    if sqlite:
        mark_events_written(session)
    else:
        mark_events_queued(session, sequence)


_INSERT_EVENT = insert(cast(Table, Event.__table__))
_QUEUE_EVENT = insert(cast(Table, QueuedEvent.__table__))


def unread_extras(
    session: Session,
    conversation_id: int,
    user_ids: Collection[int] | None = None,
    *,
    excluding: int | None = None,
) -> dict[int, dict[str, Any]]:
    """For each user (by default: each member of the conversation but ``excluding``),
    ``{"unread": ...}``: their unread count in this conversation and their badge totals, as
    they stand in this transaction. Events carry it, so a client's badge follows every change,
    and a resumed stream shows the counts of the moment, not of now."""
    if user_ids is not None and not user_ids:
        return {}
    session.flush()
    if user_ids is None:
        stmt = (
            select(
                Member.user_id,
                Member.unread_count,
                User.unread_conversations,
                User.unread_messages,
            )
            .join(User, User.id == Member.user_id)
            .where(Member.conversation_id == conversation_id)
        )
    else:
        # A member just removed has no row here, but still gets their (new) totals.
        stmt = (
            select(
                User.id,
                func.coalesce(Member.unread_count, 0),
                User.unread_conversations,
                User.unread_messages,
            )
            .outerjoin(
                Member, and_(Member.conversation_id == conversation_id, Member.user_id == User.id)
            )
            .where(User.id.in_(user_ids))
        )
    if excluding is not None:
        stmt = stmt.where(User.id != excluding)
    return {
        uid: unread_extra(int(count), (int(convs), int(msgs)))
        for uid, count, convs, msgs in session.execute(stmt.order_by(User.id))
    }


def do_prune_events(session: Session, *, before: datetime, batch: int = 5_000) -> int:
    """Delete up to ``batch`` of the oldest events written before ``before``; returns how many.

    Only a run of the oldest is deleted (event times follow ids, as writers take turns), and the
    horizon records the last id deleted, so a resume from before it is told to reload.
    """
    rows = session.execute(select(Event.id, Event.created_at).order_by(Event.id).limit(batch)).all()
    # The newest event always stays: SQLite numbers a new row max(id) + 1, so with the table
    # empty it would hand out ids again from 1, below every client's (and hub's) position.
    newest = latest_event_id(session)
    last = None
    for event_id, created_at in rows:
        if created_at >= before or event_id >= newest:
            break
        last = event_id
    if last is None:
        return 0
    deleted = sum(1 for event_id, _ in rows if event_id <= last)
    session.execute(delete(Event).where(Event.id <= last))
    horizon = session.get(EventHorizon, 1)
    if horizon is None:
        session.add(EventHorizon(id=1, pruned_through=last))
    else:
        horizon.pruned_through = max(horizon.pruned_through, last)
    return deleted

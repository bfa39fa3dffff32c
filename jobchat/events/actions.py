"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from jobchat.db.engine import mark_events_queued, mark_events_written
from jobchat.events.models import Event, EventHorizon, EventType, QueuedEvent
from jobchat.events.queries import latest_event_id
from jobchat.events.sequencer import NUMBER_QUEUED, vacuum_now_and_then

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
        mark_events_queued(session, NUMBER_QUEUED, vacuum_now_and_then)


_INSERT_EVENT = insert(cast(Table, Event.__table__))
_QUEUE_EVENT = insert(cast(Table, QueuedEvent.__table__))


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

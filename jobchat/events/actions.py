"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Insert, Table, Text, bindparam, delete, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from jobchat.db.engine import mark_events_queued, mark_events_written
from jobchat.db.prepared import Prepared
from jobchat.events.models import Event, EventHorizon, EventType, QueuedEvent
from jobchat.events.queries import EventRecord, latest_event_id
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
    keyed = {str(uid): extra for uid, extra in extras.items()} if extras else None
    columns = {
        "b_type": str(type_),
        "b_conversation_id": conversation_id,
        "b_user_id": user_id,
        "b_message_id": message_id,
        "b_created_at": now,
    }
    if connection.dialect.name != "sqlite":
        _QUEUE_EVENT.run(connection, {**columns, "b_data": data or {}, "b_extras": keyed})
        mark_events_queued(session, NUMBER_QUEUED, vacuum_now_and_then)
        return
    # Written as JSON text made here (what the column type would make), so that the commit
    # can hand the real-time stream the event as the table holds it (parsed back from that
    # text: no later change to the caller's dicts reaches it) instead of the stream reading it
    # back. Its id is SQLite's: one writer at a time, so ids follow commit order. Inside a
    # savepoint, which may yet be rolled back (and its id given to another event), it is not
    # handed on: the stream reads the table.
    data_text = _dumps(data or {})
    extras_text = _dumps(keyed)
    result = _INSERT_EVENT.run(
        connection, {**columns, "b_data": data_text, "b_extras": extras_text}
    )
    written = None
    if not session.in_nested_transaction():
        written = EventRecord(
            id=int(result.lastrowid or 0),
            type=str(type_),
            conversation_id=conversation_id,
            user_id=user_id,
            data=json.loads(data_text),
            extras=json.loads(extras_text),
        )
    mark_events_written(session, written)


def _dumps(value: Any) -> str:
    # As SQLAlchemy's JSON type writes a value (json.dumps, default separators).
    return json.dumps(value)


def _inserting(table: Table, payload: TypeEngine[Any] | None = None) -> Insert:
    """An insert of an event's columns into ``table``, with parameters named ``b_…`` (SQLAlchemy
    keeps the columns' own names for itself); ``payload``: the type data and extras are bound
    as, if not their columns' own."""
    return insert(table).values(
        {
            name: bindparam(
                f"b_{name}",
                type_=payload
                if payload is not None and name in ("data", "extras")
                else column.type,
            )
            for name, column in table.c.items()
            if name in _EVENT_COLUMNS
        }
    )


_EVENT_COLUMNS = (
    "type",
    "conversation_id",
    "user_id",
    "message_id",
    "data",
    "extras",
    "created_at",
)
# SQLite: data and extras are bound as the JSON text emit made.
_INSERT_EVENT = Prepared(_inserting(cast(Table, Event.__table__), Text()))
_QUEUE_EVENT = Prepared(_inserting(cast(Table, QueuedEvent.__table__)))


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

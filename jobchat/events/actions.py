"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Connection, Table, Text, bindparam, delete, insert, select
from sqlalchemy.orm import Session

from jobchat.db import json_text
from jobchat.db.engine import mark_events_queued, mark_events_written
from jobchat.db.prepared import Prepared
from jobchat.events.models import Event, EventHorizon, EventType, QueuedEvent
from jobchat.events.queries import EventRecord, latest_event_id
from jobchat.events.sequencer import NUMBER_QUEUED, vacuum_now_and_then

_TIME = TypeAdapter(datetime)


def json_time(at: datetime) -> Any:
    """A time as the API writes it."""
    return _TIME.dump_python(at, mode="json")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write (``emit_all``): its type, the ids it is about, its data and the
    extras of each user it carries some for."""

    type: EventType
    conversation_id: int | None = None
    user_id: int | None = None
    message_id: int | None = None
    data: dict[str, Any] | None = None
    extras: dict[int, dict[str, Any]] | None = None


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
    """Insert an event row in the caller's transaction, at once (``emit_all`` of one)."""
    emit_all(
        session, [NewEvent(type_, conversation_id, user_id, message_id, data, extras)], now=now
    )


def emit_all(session: Session, events: Sequence[NewEvent], *, now: datetime) -> None:
    """Insert event rows, in their order, in the caller's transaction, at once.

    Event ids must become visible in increasing order, or a client resuming "after 8" would miss
    a 7 committed later. SQLite has one writer at a time, and the rows go into ``events``. On
    PostgreSQL writers into different conversations commit side by side, so they go into the
    queue, and ``Database.write`` numbers them once the transaction has committed
    (``jobchat.events.sequencer``); either way the real-time stream is woken after the commit.

    The rows go in with a prepared statement rather than through the ORM's unit of work (a send
    writes one or two, and the unit of work cost more than the insert), all of them in one
    statement (its VALUES in order: the ids follow them), as each statement costs the driver
    and the database more than a row does (on PostgreSQL a round trip and about 0.1 ms of CPU).
    What they refer to (a message, a member just added) is flushed first.
    """
    if not events:
        return
    if session.new:
        session.flush()
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        params: dict[str, Any] = {}
        for i, event in enumerate(events):
            params |= {f"b_{name}_{i}": value for name, value in _columns(event, now).items()}
        _queue(len(events)).run(connection, params)
        mark_events_queued(session, NUMBER_QUEUED, vacuum_now_and_then)
        return
    _insert_all(session, connection, events, now)


def _columns(event: NewEvent, now: datetime) -> dict[str, Any]:
    """The event's row (extras keyed by the user id as text, as JSON keeps them)."""
    keyed = {str(uid): extra for uid, extra in event.extras.items()} if event.extras else None
    return {
        "type": str(event.type),
        "conversation_id": event.conversation_id,
        "user_id": event.user_id,
        "message_id": event.message_id,
        "created_at": now,
        "data": event.data or {},
        "extras": keyed,
    }


def _insert_all(
    session: Session, connection: Connection, events: Sequence[NewEvent], now: datetime
) -> None:
    """SQLite: the events in one INSERT of a row each, in order.

    Their data and extras are written as JSON text made here (what the column type would
    make), so that the commit can hand the real-time stream each event as the table holds it
    (read back from that text: no later change to the caller's dicts reaches it) instead of the
    stream reading it back. Their ids are SQLite's: one writer at a time, so ids follow commit
    order, and the rows of one INSERT take the next ones in turn (each row one more than the
    table's largest), the last of them the statement's ``lastrowid``. Inside a savepoint, which
    may yet be rolled back (and its ids given to other events), they are not handed on: the
    stream reads the table.
    """
    params: dict[str, Any] = {}
    rows = []
    for i, event in enumerate(events):
        columns = _columns(event, now)
        data_text, data = json_text.dumps_and_reread(columns["data"])
        extras_text, extras = json_text.dumps_and_reread(columns["extras"])
        params |= {f"b_{name}_{i}": value for name, value in columns.items()}
        params |= {f"b_data_{i}": data_text, f"b_extras_{i}": extras_text}
        rows.append((columns["type"], event, data, extras))
    result = _inserting(len(events)).run(connection, params)
    if session.in_nested_transaction():
        mark_events_written(session, None)
        return
    first = int(result.lastrowid or 0) - len(events) + 1
    for i, (type_, event, data, extras) in enumerate(rows):
        record = EventRecord(
            id=first + i,
            type=type_,
            conversation_id=event.conversation_id,
            user_id=event.user_id,
            data=data,
            extras=extras,
        )
        mark_events_written(session, record)


@cache
def _inserting(n: int) -> Prepared:
    """SQLite: an INSERT of ``n`` events, their parameters ``b_<column>_<i>`` (SQLAlchemy keeps
    the columns' own names for itself), data and extras bound as the JSON text ``_insert_all``
    made."""
    table = cast(Table, Event.__table__)
    return Prepared(
        insert(table).values(
            [
                {
                    name: bindparam(
                        f"b_{name}_{i}",
                        type_=Text() if name in _JSON_TEXT else table.c[name].type,
                    )
                    for name in _EVENT_COLUMNS
                }
                for i in range(n)
            ]
        )
    )


# SQLite binds these as the JSON text ``_insert_all`` made.
_JSON_TEXT = ("data", "extras")
_EVENT_COLUMNS = (
    "type",
    "conversation_id",
    "user_id",
    "message_id",
    "data",
    "extras",
    "created_at",
)
_QUEUED = cast(Table, QueuedEvent.__table__)


@cache
def _queue(n: int) -> Prepared:
    """PostgreSQL: an INSERT of ``n`` events into the queue, their parameters ``b_<column>_<i>``."""
    return Prepared(
        insert(_QUEUED).values(
            [
                {
                    name: bindparam(f"b_{name}_{i}", type_=_QUEUED.c[name].type)
                    for name in _EVENT_COLUMNS
                }
                for i in range(n)
            ]
        )
    )


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

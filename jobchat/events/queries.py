"""Reading the event stream: the tail the dispatcher follows, and what a resuming client missed."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from jobchat.db.prepared import Prepared, connection_of
from jobchat.events.models import Event, EventHorizon, EventType

_COLUMNS = (
    Event.id,
    Event.type,
    Event.conversation_id,
    Event.user_id,
    Event.data,
    Event.extras,
)
EventRow = Row[Any]


@dataclass(slots=True)
class EventRecord:
    """An event as ``events_after`` reads it: what its writer hands the real-time stream
    (``emit`` on SQLite), and what the stream's ``StreamEvent`` adds its frames to."""

    id: int
    type: str
    conversation_id: int | None
    user_id: int | None
    data: dict[str, Any]
    extras: dict[str, Any] | None


def latest_event_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)


def pruned_through(session: Session) -> int:
    horizon = session.get(EventHorizon, 1)
    return horizon.pruned_through if horizon is not None else 0


# Run on the driver's cursor (jobchat.db.prepared): the stream's hub reads the table's tail
# whenever another process commits events (and on every poll).
_AFTER = Prepared(
    select(*_COLUMNS)
    .where(Event.id > bindparam("b_after"))
    .order_by(Event.id)
    .limit(bindparam("b_limit"))
)


def events_after(session: Session, after: int, *, limit: int) -> list[EventRecord]:
    """The next events in id order: the dispatcher's tail of the stream."""
    rows = _AFTER.run(connection_of(session), {"b_after": after, "b_limit": limit}).rows
    return [EventRecord(*row) for row in rows]


def own_member_events(
    session: Session, user_id: int, after: int, through: int
) -> Sequence[tuple[int, str, int]]:
    """(id, type, conversation) of the user's member.added / member.removed in (after, through]."""
    rows = session.execute(
        select(Event.id, Event.type, Event.conversation_id)
        .where(
            Event.user_id == user_id,
            Event.id > after,
            Event.id <= through,
            Event.type.in_([EventType.member_added, EventType.member_removed]),
        )
        .order_by(Event.id)
    ).all()
    return [(r.id, r.type, r.conversation_id) for r in rows]


def conversation_events(
    session: Session,
    conversation_ids: Collection[int],
    after: int,
    through: int,
    *,
    limit: int,
) -> Sequence[EventRow]:
    """The events of these conversations in (after, through], in order, at most ``limit``."""
    if not conversation_ids:
        return []
    return session.execute(
        select(*_COLUMNS)
        .where(
            Event.id > after,
            Event.id <= through,
            Event.conversation_id.in_(sorted(conversation_ids)),
        )
        .order_by(Event.id)
        .limit(limit)
    ).all()

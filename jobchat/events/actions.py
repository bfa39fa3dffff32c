"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from jobchat.conversations.models import Member
from jobchat.db.engine import mark_events_written
from jobchat.events.models import Event, EventHorizon, EventType
from jobchat.events.queries import latest_event_id

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
) -> Event:
    """Add an event row to the caller's transaction.

    Event ids must become visible in increasing order, or a client resuming "after 8" would miss
    a 7 committed later; ``Database.write`` serialises writers so that they do, and wakes the
    real-time stream once the transaction has committed.
    """
    event = Event(
        type=type_,
        conversation_id=conversation_id,
        user_id=user_id,
        message_id=message_id,
        data=data or {},
        extras={str(uid): extra for uid, extra in extras.items()} if extras else None,
        created_at=now,
    )
    session.add(event)
    mark_events_written(session)
    return event


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
    in_conversation = select(Member.user_id, Member.unread_count).where(
        Member.conversation_id == conversation_id
    )
    if user_ids is not None:
        in_conversation = in_conversation.where(Member.user_id.in_(user_ids))
    if excluding is not None:
        in_conversation = in_conversation.where(Member.user_id != excluding)
    # (Not dict(result): a Result has .keys(), so dict() would take it for a mapping.)
    counts: dict[int, int] = {  # noqa: C416
        uid: count for uid, count in session.execute(in_conversation)
    }
    # A member just removed has no row here, but still gets their (new) totals.
    users = list(counts) if user_ids is None else list(user_ids)
    if not users:
        return {}
    totals: dict[int, tuple[int, int]] = {
        uid: (convs, msgs)
        for uid, convs, msgs in session.execute(
            select(Member.user_id, func.count(), func.sum(Member.unread_count))
            .where(Member.user_id.in_(users), Member.unread_count > 0)
            .group_by(Member.user_id)
        )
    }
    out: dict[int, dict[str, Any]] = {}
    for uid in users:
        convs, msgs = totals.get(uid, (0, 0))
        out[uid] = {
            "unread": {
                "conversation": counts.get(uid, 0),
                "conversations": int(convs),
                "messages": int(msgs),
            }
        }
    return out


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

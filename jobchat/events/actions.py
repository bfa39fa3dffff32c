"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobchat.events.models import Event, EventType

# PostgreSQL hands out sequence numbers at insert time, not commit time, so two concurrent
# transactions could commit ids 8 then 7 and a client resuming "after 8" would never see 7.
# Holding this transaction-scoped lock from the first event to the commit keeps event ids in
# commit order. SQLite needs nothing: its writers are already serialised.
_EVENT_LOCK_KEY = 0x6A6F6263  # "jobc"


def emit(
    session: Session,
    type_: EventType,
    *,
    now: datetime,
    conversation_id: int | None = None,
    user_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_LOCK_KEY})
    event = Event(
        type=type_,
        conversation_id=conversation_id,
        user_id=user_id,
        data=data or {},
        created_at=now,
    )
    session.add(event)
    return event

"""Writing events. Every action calls ``emit`` inside its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jobchat.events.models import Event, EventType


def emit(
    session: Session,
    type_: EventType,
    *,
    now: datetime,
    conversation_id: int | None = None,
    user_id: int | None = None,
    message_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add an event row to the caller's transaction.

    Event ids must become visible in increasing order, or a client resuming "after 8" would miss
    a 7 committed later; ``Database.write`` serialises writers so that they do.
    """
    event = Event(
        type=type_,
        conversation_id=conversation_id,
        user_id=user_id,
        message_id=message_id,
        data=data or {},
        created_at=now,
    )
    session.add(event)
    return event

"""Event rows, written in the same transaction as the change they describe."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime


class EventType(enum.StrEnum):
    message_created = "message.created"
    message_deleted = "message.deleted"
    conversation_read = "conversation.read"
    conversation_updated = "conversation.updated"
    member_added = "member.added"
    member_removed = "member.removed"


class Event(Base):
    """``id`` increases in commit order (see ``events.actions``): a client resumes after it.

    ``user_id`` names the one user an event concerns (the reader of a ``conversation.read``, the
    member added or removed); audience is decided when the event is delivered.
    """

    __tablename__ = "events"
    __table_args__ = (Index(None, "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The message a message event is about, so that deleting it for everyone can blank the
    # copy of its content the event holds.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

"""Activity rows: one line of a conversation's history that is not a message."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import User


class ActivityKind(enum.StrEnum):
    ended = "ended"
    reopened = "reopened"


class Activity(Base):
    """Something that happened to a conversation, shown in its history to every member.

    ``after_message_id`` is the conversation's newest message when it happened (0 before any):
    the line is drawn after that message, so history and activity interleave by message id,
    which (unlike clocks) never disagrees with the order the messages are shown in. A reopening
    also names the ``message_id`` that reopened it, drawn just after the line.
    """

    __tablename__ = "conversation_activity"
    __table_args__ = (Index(None, "conversation_id", "after_message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    after_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Indexed: erasing a message deletes the lines naming it (jobchat.privacy, migration 0021).
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    actor: Mapped[User | None] = relationship()

"""Messages written now to be posted later by their author (the jobs worker posts them)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import User


class ScheduledStatus(enum.StrEnum):
    scheduled = "scheduled"  # waiting for send_at
    sent = "sent"  # posted: message_id is the message
    failed = "failed"  # the author could no longer post it: reason says why
    cancelled = "cancelled"


class ScheduledMessage(Base):
    __tablename__ = "scheduled_messages"
    __table_args__ = (
        # The author's list, soonest first (optionally of one status).
        Index("ix_scheduled_messages_author", "author_id", "status", "send_at"),
        # A conversation's pending ones, shown to their author in the thread.
        Index("ix_scheduled_messages_conversation", "conversation_id", "author_id", "status"),
        # A retried POST with the same key is stored once (NULL keys never collide).
        UniqueConstraint("author_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    body: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(10))
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=ScheduledStatus.scheduled)
    # Why a failed one was not posted, in words for its author.
    reason: Mapped[str | None] = mapped_column(Text)
    # Indexed: erasing a message checks this foreign key (jobchat.privacy, migration 0021).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # A digest of the request as first made: a retry with the key is compared with it, not
    # with the row, which the author may have edited since (None: stored before it existed).
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The one job that may post it (moving send_at queues a new one): any other job of this
    # message finds a different id here and does nothing. No foreign key: done jobs are pruned.
    job_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    author: Mapped[User] = relationship()

"""A bulk message and its recipients: the recipient rows are the record of who was messaged.

The runner marks a recipient sent in the same transaction that posts their message, so after a
crash the rows still ``pending`` are exactly the candidates nobody has messaged yet.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import User

MAX_RECIPIENTS = 1000


class BulkStatus(enum.StrEnum):
    queued = "queued"  # waiting for send_at, or for the worker to start
    sending = "sending"
    done = "done"


class RecipientStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    skipped = "skipped"


class BulkMessage(Base):
    __tablename__ = "bulk_messages"
    __table_args__ = (UniqueConstraint("author_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    # The text each recipient's message is rendered from: the written body, or the template's
    # as it was when the bulk was queued (editing the template later changes nothing here).
    body: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # What the request asked for, hashed: a retry with the same key must ask for the same.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default=BulkStatus.queued)
    total: Mapped[int] = mapped_column(Integer)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Which runner job may work on it: each job queues its successor with the next number, so a
    # job run again after a crash, whose successor exists already, does nothing.
    step: Mapped[int] = mapped_column(Integer, default=0)
    # When this bulk's next text may go to the SMS provider (its texts are spaced at
    # JOBCHAT_SMS_RATE_PER_SECOND).
    sms_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author: Mapped[User] = relationship()


class BulkRecipient(Base):
    __tablename__ = "bulk_recipients"
    __table_args__ = (Index(None, "bulk_id", "status", "position"),)

    bulk_id: Mapped[int] = mapped_column(
        ForeignKey("bulk_messages.id", ondelete="CASCADE"), primary_key=True
    )
    # Its place in the request (duplicates collapsed): the order recipients are messaged in.
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # As the request named it: an unknown one has no application row to point at.
    application_ext: Mapped[str] = mapped_column(String(200))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    status: Mapped[str] = mapped_column(String(10), default=RecipientStatus.pending)
    code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(300))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    # Indexed: erasing a message checks this foreign key (jobchat.privacy, migration 0021).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

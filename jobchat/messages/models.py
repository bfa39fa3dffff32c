"""Messages, who hid which, and delivery records for email and SMS."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import User
from jobchat.files.models import Attachment


class Channel(enum.StrEnum):
    app = "app"
    email = "email"
    sms = "sms"


class DeliveryStatus(enum.StrEnum):
    # An SMS waiting for the end of the candidate's night (JOBCHAT_SMS_QUIET_HOURS), then
    # queued; its job runs at ``held_until``.
    held = "held"
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    undelivered = "undelivered"  # the carrier could not hand it over (SMS)
    failed = "failed"
    cancelled = "cancelled"  # deleted for everyone before it went out


class Message(Base):
    """A message. Deleted for everyone means tombstoned: the body stays for audit, shown to none."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_history", "conversation_id", "id"),
        # A retried send carries the same key and is stored once (NULL keys never collide).
        UniqueConstraint("author_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))
    channel: Mapped[str] = mapped_column(String(10), default=Channel.app)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    deliveries: Mapped[list[Delivery]] = relationship(order_by="Delivery.id")
    attachments: Mapped[list[Attachment]] = relationship(
        order_by=Attachment.position, viewonly=True
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class HiddenMessage(Base):
    """A message one user deleted "for me"."""

    __tablename__ = "hidden_messages"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    hidden_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One email or SMS to one recipient; the outbound workers move it past ``queued``."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)
    # Not gone out yet (a deletion or a deactivation cancels these): queued, or held for the
    # candidate's night.
    UNSENT: ClassVar[tuple[str, ...]] = (DeliveryStatus.queued, DeliveryStatus.held)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # While held for SMS quiet hours: when it goes out (None otherwise).
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(200), index=True)
    # The provider's own code for a failure (Twilio's 21211, 30003, ...).
    error_code: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    recipient: Mapped[User] = relationship()

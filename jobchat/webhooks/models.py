"""Webhooks, the events queued for each, and the log of every attempt to deliver one."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime

MAX_URL_CHARS = 2000


class EventType(enum.StrEnum):
    message_created = "message.created"
    message_deleted = "message.deleted"
    conversation_created = "conversation.created"
    conversation_ended = "conversation.ended"
    conversation_reopened = "conversation.reopened"
    message_delivery = "message.delivery"
    candidate_sms_consent = "candidate.sms_consent"


class DeliveryState(enum.StrEnum):
    pending = "pending"  # waiting for its turn or its next attempt
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # retried for a day without a 2xx: given up
    cancelled = "cancelled"  # the webhook was disabled first


class Webhook(Base):
    """An integrator's endpoint and the event types it takes. ``disabled_at`` set: it gets
    nothing (failing for three days, or a 410 Gone, does that; ``disabled_reason`` says why)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_CHARS))
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSON)
    # whsec_ + base64: the receiver checks signatures with it, so it is kept as given out.
    secret: Mapped[str] = mapped_column(String(100))
    # The secret before the last rotation, still signed with until ``previous_until``.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The first failed attempt since the last success (None: not failing).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


class WebhookDelivery(Base):
    """One event for one webhook: its body as it will be sent, and where it is in its lane.

    A lane is (webhook, conversation): only its oldest pending delivery has a job (``job_id``)
    so a conversation's events arrive in order. The ids of what the event is about are kept as
    columns (no foreign keys: an erasure deletes them here through ``forget``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_lane", "webhook_id", "conversation_id", "status", "id"),
        Index("ix_webhook_deliveries_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # The webhook-id header: the same on every attempt, so a receiver can drop a repeat.
    msg_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    candidate_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The one job that may deliver it now (a stale or duplicate job finds another id here).
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """The delivery log: one row per POST, whatever came of it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_webhook", "webhook_id", "id"),
        Index("ix_webhook_attempts_at", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)

"""The audit log: who did what to whom, when and from where.

An entry names people by id and external id only, never by name, address, number or anything
they wrote: an erasure must be able to leave the entries about a person in place (an erasure's
own entry among them) without leaving that person readable in them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime


class AuditAction(enum.StrEnum):
    message_deleted = "message.deleted"  # deleted for everyone
    conversation_ended = "conversation.ended"
    conversation_reopened = "conversation.reopened"
    candidate_exported = "candidate.exported"
    candidate_erased = "candidate.erased"
    messages_expired = "messages.expired"  # retention: erased for their age
    user_deactivated = "user.deactivated"
    candidate_deactivated = "candidate.deactivated"
    token_revoked = "token.revoked"  # noqa: S105 (an action's name, not a secret)
    api_key_revoked = "api_key.revoked"
    sms_opted_out = "sms.opted_out"
    sms_opted_in = "sms.opted_in"


class PartyType(enum.StrEnum):
    """Who acted, or what was acted on."""

    integration = "integration"  # the ATS, by an API key
    staff = "staff"
    candidate = "candidate"
    number = "number"  # a phone number, by a text (STOP/START); never stored itself
    system = "system"  # the worker (retention) or the command line
    message = "message"
    conversation = "conversation"
    token = "token"  # noqa: S105 (a kind of thing, not a secret)
    api_key = "api_key"


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at", "id"),
        Index("ix_audit_log_action", "action", "at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action: Mapped[str] = mapped_column(String(50))
    actor_type: Mapped[str | None] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(BigId)
    # The ATS's external id of the person, or an API key's name: what an admin reads.
    actor_ref: Mapped[str | None] = mapped_column(String(200))
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    subject_ref: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Counts, reasons, channels: never a name, an address, a number or a message's words.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

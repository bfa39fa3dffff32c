"""What went out by email and what came in: for threading, for bounces, and for the record."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime


class EmailKind(enum.StrEnum):
    message = "message"  # an email-channel message to a candidate
    notification = "notification"  # "you have unread messages"
    closed_notice = "closed_notice"  # "this conversation is closed"


class SentEmail(Base):
    """One email we sent. Its Message-ID finds the thread again when a reply lost its reply
    address, and finds the delivery a bounce is about."""

    __tablename__ = "sent_emails"
    __table_args__ = (Index("ix_sent_emails_thread", "conversation_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id_header: Mapped[str] = mapped_column(String(250), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    address: Mapped[str] = mapped_column(String(320))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundOutcome(enum.StrEnum):
    posted = "posted"  # became a message in its thread
    closed = "closed"  # the conversation is ended: not posted, answered once
    empty = "empty"  # nothing left once the quote was taken off
    wrong_sender = "wrong_sender"  # not from the member the reply address belongs to
    not_member = "not_member"  # the person is no longer in the conversation
    unknown_thread = "unknown_thread"  # no valid reply address, no known Message-ID
    automatic = "automatic"  # an auto-reply, a list mail: never posted, never answered
    bounce = "bounce"  # a delivery failure report: marks the delivery failed (if authentic)
    dmarc_fail = "dmarc_fail"  # its From: domain's DMARC says it is not theirs: a forgery


class InboundEmail(Base):
    """Every email that reached us, raw, with what became of it."""

    __tablename__ = "inbound_emails"
    __table_args__ = (Index("ix_inbound_emails_thread", "conversation_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The Message-ID, or a digest of the raw mail when it has none: a mail delivered twice
    # (an SMTP retry, a webhook retry) is stored once.
    dedupe_key: Mapped[str] = mapped_column(String(250), unique=True)
    message_id_header: Mapped[str | None] = mapped_column(String(250))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    recipients: Mapped[str] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)

"""SMS consent, as a ledger of every change, and every text that reached us."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import User


class ConsentSource(enum.StrEnum):
    ats = "ats"  # the ATS sent sms_consent
    keyword = "keyword"  # the candidate texted STOP, START, ...
    staff = "staff"  # a staff member recorded it (the candidate told them)


class SmsConsentChange(Base):
    """One change of a candidate's SMS consent: who or what changed it, when, and why. The
    candidate's current consent (users.sms_consent) is the last of these."""

    __tablename__ = "sms_consent_changes"
    __table_args__ = (Index("ix_sms_consent_changes_candidate", "candidate_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    consented: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An opt-in's first text says who we are and how to stop (jobchat.sms.intro): the text
    # about to carry it ("delivery:7", "job:12") holds it until ``intro_claimed_until``, and
    # ``intro_sent_at`` says it went. Withdrawn and given again, a new row: a new intro.
    intro_claim: Mapped[str | None] = mapped_column(String(40))
    intro_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    intro_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])


class SmsOptOut(Base):
    """A phone number whose owner texted STOP (or an opt-out like it). Consent belongs to the
    number, not to a candidate record: every candidate with this number is covered, and an
    integration's later ``sms_consent: true`` does not override it. The row goes when the
    number texts START.

    The number itself is not kept, only its keyed hash (jobchat.sms.optouts): the row outlives
    an erased candidate, so that their STOP is still honoured, without keeping their number."""

    __tablename__ = "sms_opt_outs"

    number_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What opted it out ("STOP", or the phrase matched): never the text's own words.
    detail: Mapped[str | None] = mapped_column(Text)


class SmsOutcome(enum.StrEnum):
    posted = "posted"  # became the candidate's message in a thread
    opted_out = "opted_out"  # STOP and friends
    opted_in = "opted_in"  # START and friends
    help = "help"  # HELP, INFO: answered with a short help text
    closed = "closed"  # into an ended conversation: not posted, answered once
    unknown_sender = "unknown_sender"  # no candidate has this number: kept for an admin
    no_conversation = "no_conversation"  # a candidate with nowhere to post: kept for an admin
    empty = "empty"


class InboundSms(Base):
    """Every text that reached us, with what became of it. MessageSid is unique: a webhook
    Twilio retries is stored once."""

    __tablename__ = "inbound_sms"
    __table_args__ = (Index("ix_inbound_sms_outcome", "outcome", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    # Indexed: erasing a message checks this foreign key (jobchat.privacy, migration 0021).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)

    candidate: Mapped[User | None] = relationship(foreign_keys=[candidate_id])


class SmsStatusReport(Base):
    """A delivery status Twilio reported. Kept, because one can arrive before the worker has
    recorded the send it is about (Twilio answers the send, then calls back, at once): such a
    report is applied when the send is recorded."""

    __tablename__ = "sms_status_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)

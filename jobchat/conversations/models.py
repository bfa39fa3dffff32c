"""Conversations and their explicitly stored members."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, select, text
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import Application, Job, Organization, User


class Kind(enum.StrEnum):
    job_partner = "job_partner"
    job_partners = "job_partners"
    job_relocation = "job_relocation"
    candidate_partner = "candidate_partner"
    case = "case"
    application = "application"
    agency = "agency"
    agency_private = "agency_private"


# Kinds with exactly one candidate: the only ones that take email and SMS, and that staff end.
ONE_CANDIDATE_KINDS = frozenset({Kind.candidate_partner, Kind.case, Kind.application})


class Status(enum.StrEnum):
    open = "open"
    ended = "ended"


class Conversation(Base):
    """One per kind and context: ``context_key`` (kind plus context ids) is unique.

    ``job_id`` and ``candidate_id`` are filled in from the application too, so the inbox filters
    by job or candidate on one column whatever the kind.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        Index(None, "job_id"),
        Index(None, "candidate_id"),
        Index(None, "application_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    context_key: Mapped[str] = mapped_column(String(200), unique=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    employer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The agency user of an agency or agency_private thread is part of its context: when an
    # application passes to another agency user, the new one gets a fresh thread and never
    # reads the previous agency user's messages.
    agency_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default=Status.open)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)

    job: Mapped[Job | None] = relationship()
    # The status of the job the conversation is about, as one column: a send asks whether it
    # is closed, and loading the whole Job with the conversation cost more than the rest of
    # that query (jobchat.access loads it with the conversation; elsewhere, on first use).
    job_status: Mapped[str | None] = column_property(
        select(Job.status).where(Job.id == job_id).scalar_subquery(), deferred=True
    )
    candidate: Mapped[User | None] = relationship(foreign_keys=[candidate_id])
    application: Mapped[Application | None] = relationship()
    partner: Mapped[Organization | None] = relationship()
    employer_user: Mapped[User | None] = relationship(foreign_keys=[employer_user_id])
    agency_user: Mapped[User | None] = relationship(foreign_keys=[agency_user_id])
    members: Mapped[list[Member]] = relationship(
        back_populates="conversation", order_by="Member.user_id"
    )


class Member(Base):
    """A user's place in a conversation and their read state.

    ``last_activity_at`` copies the conversation's, so that a user's inbox is one range scan of
    ``(user_id, last_activity_at, conversation_id)`` however many messages there are.
    """

    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_inbox", "user_id", "last_activity_at", "conversation_id"),
        # The badge, and the unread counts every event carries for its recipients, sum a user's
        # conversations with something unread: usually few, however many they are in.
        Index(
            "ix_members_unread",
            "user_id",
            "unread_count",
            sqlite_where=text("unread_count > 0"),
            postgresql_where=text("unread_count > 0"),
        ),
        Index(
            "ix_members_sms_due",
            "sms_due_at",
            sqlite_where=text("sms_due_at IS NOT NULL"),
            postgresql_where=text("sms_due_at IS NOT NULL"),
        ),
        Index(
            "ix_members_notify_due",
            "notify_due_at",
            sqlite_where=text("notify_due_at IS NOT NULL"),
            postgresql_where=text("notify_due_at IS NOT NULL"),
        ),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Email notifications: when this member is to be told of what they have not read (set by
    # a send, cleared by the sweep that queues the email), and the newest message told of.
    notify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_through_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Notification texts (candidates who chose them): when this member is to get one for what
    # they have not read, and when they last got one here (at most one per delay).
    sms_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sms_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Push notifications quiet hours held back (jobchat.notifications): the newest such
    # message, pushed when the person's quiet hours end (or are removed); None when none is.
    push_held_id: Mapped[int | None] = mapped_column(BigInteger)

    conversation: Mapped[Conversation] = relationship(back_populates="members")
    user: Mapped[User] = relationship()

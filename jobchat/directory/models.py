"""Who and what conversations are about. The ATS owns these; we keep a copy keyed by its ids."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime


class OrgKind(enum.StrEnum):
    employer = "employer"
    source_partner = "source_partner"
    agency = "agency"


class UserKind(enum.StrEnum):
    staff = "staff"
    candidate = "candidate"


class Role(enum.StrEnum):
    admin = "admin"
    member = "member"


class Stage(enum.StrEnum):
    prospect = "prospect"
    applied = "applied"
    screening = "screening"
    cv_review = "cv_review"
    interview = "interview"
    offer = "offer"
    offer_accepted = "offer_accepted"
    hired = "hired"
    rejected = "rejected"
    withdrawn = "withdrawn"


# Candidates at these stages belong in their job's relocation chat.
RELOCATION_STAGES = frozenset({Stage.offer_accepted, Stage.hired})


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ext_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))


class User(Base):
    """Anyone who signs in: staff of an organisation, or a candidate.

    Staff and candidates have separate external id spaces in the ATS, hence (kind, ext_id).
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("kind", "ext_id"),
        Index(None, "organization_id"),
        # The few people with notifications held back by quiet hours, looked at every second.
        Index(
            "ix_users_notify_held",
            "notify_held_until",
            sqlite_where=text("notify_held_until IS NOT NULL"),
            postgresql_where=text("notify_held_until IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    ext_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Whether the zone was given (by the ATS, or the person), not the default: where it was
    # not, a text's quiet hours go by the phone number's zones (jobchat.sms.quiet).
    timezone_given: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    # The other notification channels (jobchat.notifications decides who is told how): a push
    # to their devices' subscriptions, and, for candidates who chose it, one text.
    push_notifications: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    sms_notifications: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Quiet hours, "HH:MM" in the person's time zone (both set or neither; see
    # jobchat.quiet_hours): no push and no text then.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    # When what was held back by quiet hours is to be sent (the end of the window it came due
    # in); None while nothing is held.
    notify_held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Staff only.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    role: Mapped[str | None] = mapped_column(String(20))
    # Candidates only.
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # A phone number the ATS sent that is not a valid one is kept as sent, with the reason here
    # (a valid one is stored in E.164 and this is empty).
    phone_problem: Mapped[str | None] = mapped_column(String(200))
    source_partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id"), index=True
    )
    # The badge: conversations with something unread and unread messages, summed over the
    # user's member rows. Kept by jobchat.conversations.unread, in the same transaction as every
    # change of a member's unread count, so that neither the badge nor an event sums them.
    unread_conversations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unread_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the ATS deactivates the person (DELETE); cleared when it sends them again (PUT).
    # A deactivated person cannot sign in, and is no active member of any conversation, but
    # what they wrote stays, under their name.
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization | None] = relationship(foreign_keys=[organization_id])
    source_partner: Mapped[Organization | None] = relationship(foreign_keys=[source_partner_id])

    @property
    def is_staff(self) -> bool:
        return self.kind == UserKind.staff

    @property
    def is_candidate(self) -> bool:
        return self.kind == UserKind.candidate

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None


class JobStatus(enum.StrEnum):
    open = "open"
    closed = "closed"  # its conversations stay readable; nothing new is posted in them


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ext_id: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    employer_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.open, server_default="open")

    employer: Mapped[Organization] = relationship()
    team: Mapped[list[User]] = relationship(secondary="job_team", order_by="User.id")
    partners: Mapped[list[Organization]] = relationship(
        secondary="job_partners", order_by="Organization.id"
    )


class JobTeam(Base):
    __tablename__ = "job_team"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class JobPartner(Base):
    __tablename__ = "job_partners"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Application(Base):
    """A candidate on a job: a "case"."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("job_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ext_id: Mapped[str] = mapped_column(String(200), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    stage_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    agency_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)

    job: Mapped[Job] = relationship()
    candidate: Mapped[User] = relationship(foreign_keys=[candidate_id])
    stage_owner: Mapped[User | None] = relationship(foreign_keys=[stage_owner_id])
    agency_user: Mapped[User | None] = relationship(foreign_keys=[agency_user_id])

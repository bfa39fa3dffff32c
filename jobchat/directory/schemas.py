"""Bodies of the integration upserts, and the stored objects as they are answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from jobchat.directory.models import (
    Application,
    Job,
    JobStatus,
    Organization,
    OrgKind,
    Role,
    Stage,
    User,
)
from jobchat.inputs import ExtRef, Line, Moment, Text

_strict = ConfigDict(extra="forbid", str_strip_whitespace=True)
Name = Annotated[Line, Field(min_length=1, max_length=200)]
Email = Annotated[Text, Field(max_length=320)]
Phone = Annotated[Text, Field(max_length=40)]
Timezone = Annotated[Text, Field(max_length=64)]


class OrganizationIn(BaseModel):
    model_config = _strict
    name: Name
    kind: OrgKind


class OrganizationOut(BaseModel):
    id: str
    name: str
    kind: OrgKind

    @classmethod
    def of(cls, org: Organization) -> OrganizationOut:
        return cls(id=org.ext_id, name=org.name, kind=OrgKind(org.kind))


class StaffIn(BaseModel):
    """A staff user. Fields left out keep their stored value on update."""

    model_config = _strict
    name: Name
    email: Email
    organization: ExtRef
    role: Role
    phone: Phone | None = None
    timezone: Timezone | None = None


class CandidateIn(BaseModel):
    """A candidate. Fields left out keep their stored value on update; null clears one."""

    model_config = _strict
    name: Name
    email: Email
    phone: Phone | None = None
    sms_consent: bool | None = None
    source_partner: ExtRef | None = None
    timezone: Timezone | None = None


class Notifications(BaseModel):
    """Which channels may tell the person of a message they have not seen."""

    push: bool = Field(description="Web Push to the browsers and installed apps they enabled.")
    email: bool = Field(description="An email when a message stays unread for a while.")
    sms: bool = Field(
        description="Candidates: one text when a message stays unread longer (needs consent)."
    )


class NotificationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Strict: "yes" or 1 is a mistake to name, not a switch to guess at.
    push: StrictBool | None = None
    email: StrictBool | None = None
    sms: StrictBool | None = Field(default=None, description="Candidates only (staff: false).")


HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["21:00"])]


class QuietHoursIO(BaseModel):
    """A daily window in the person's own time zone; it may cross midnight."""

    model_config = ConfigDict(extra="forbid")
    start: HHMM
    end: HHMM


class UserOut(BaseModel):
    id: str
    kind: str
    name: str
    email: str
    phone: str | None
    timezone: str
    email_notifications: bool = Field(description="The same as notifications.email.")
    notifications: Notifications
    quiet_hours: QuietHoursIO | None = Field(
        description="No push and no notification text in this window (their time zone)."
    )
    organization: str | None = None
    role: Role | None = None
    sms_consent: bool | None = None
    phone_problem: str | None = Field(
        default=None, description="Why the candidate's phone number is not a valid one."
    )
    source_partner: str | None = None
    sms_number_opted_out: bool | None = Field(
        default=None,
        description=(
            "In the answer of a candidate upsert: whether the candidate's phone number texted "
            "STOP (or an opt-out like it) and not START since. Their `sms_consent` then stays "
            "false whatever the upsert sent: a person's own opt-out wins until they text START."
        ),
    )

    @classmethod
    def of(cls, user: User, *, sms_number_opted_out: bool | None = None) -> UserOut:
        out = cls(
            id=user.ext_id,
            kind=user.kind,
            name=user.name,
            email=user.email,
            phone=user.phone,
            timezone=user.timezone,
            email_notifications=user.email_notifications,
            notifications=Notifications(
                push=user.push_notifications,
                email=user.email_notifications,
                sms=user.sms_notifications,
            ),
            quiet_hours=(
                QuietHoursIO(start=user.quiet_start, end=user.quiet_end)
                if user.quiet_start is not None and user.quiet_end is not None
                else None
            ),
        )
        if user.is_staff:
            out.organization = user.organization.ext_id if user.organization else None
            out.role = Role(user.role) if user.role else None
        else:
            out.sms_consent = user.sms_consent
            out.phone_problem = user.phone_problem
            out.source_partner = user.source_partner.ext_id if user.source_partner else None
            out.sms_number_opted_out = sms_number_opted_out
        return out


class JobIn(BaseModel):
    """A job. ``team``, ``partners`` and ``status`` left out keep their stored value on update
    (a new job is open)."""

    model_config = _strict
    title: Annotated[Line, Field(min_length=1, max_length=300)]
    employer: ExtRef
    team: list[ExtRef] | None = Field(
        default=None, description="Staff external ids; empty means the whole employer."
    )
    partners: list[ExtRef] | None = Field(
        default=None, description="Source partner and agency organisation external ids."
    )
    status: JobStatus | None = Field(
        default=None,
        description="open (the default) or closed: a closed job's conversations stay readable "
        "but take no new message (409 job_closed) and no new conversation starts about it.",
    )


class JobOut(BaseModel):
    id: str
    title: str
    employer: str
    team: list[str]
    partners: list[str]
    status: JobStatus

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.ext_id,
            title=job.title,
            employer=job.employer.ext_id,
            team=[u.ext_id for u in job.team],
            partners=[o.ext_id for o in job.partners],
            status=JobStatus(job.status),
        )


class ApplicationIn(BaseModel):
    model_config = _strict
    job: ExtRef
    candidate: ExtRef
    stage: Stage
    stage_owner: ExtRef | None = None
    agency_user: ExtRef | None = None
    applied_at: Moment | None = None


class ApplicationOut(BaseModel):
    id: str
    job: str
    candidate: str
    stage: Stage
    stage_owner: str | None
    agency_user: str | None
    applied_at: datetime

    @classmethod
    def of(cls, app: Application) -> ApplicationOut:
        return cls(
            id=app.ext_id,
            job=app.job.ext_id,
            candidate=app.candidate.ext_id,
            stage=Stage(app.stage),
            stage_owner=app.stage_owner.ext_id if app.stage_owner else None,
            agency_user=app.agency_user.ext_id if app.agency_user else None,
            applied_at=app.applied_at,
        )


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: Timezone | None = Field(default=None, description="An IANA name, e.g. Europe/Berlin.")
    email_notifications: bool | None = Field(
        default=None, description="An alias of notifications.email."
    )
    notifications: NotificationsIn | None = None
    quiet_hours: QuietHoursIO | None = Field(
        default=None, description="null: no quiet hours. Left out: unchanged."
    )

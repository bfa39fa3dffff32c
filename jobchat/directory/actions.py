"""The integration upserts and user preferences: the only code that writes the directory.

Each upsert keeps conversation members in step with what it changed, in the same transaction.
Fields a client leaves out keep their stored value, so an ATS can send just what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobchat.auth.actions import do_end_access
from jobchat.conversations.actions import sync_conversations
from jobchat.conversations.membership import (
    conversations_of_application,
    conversations_of_candidate,
    conversations_of_job,
    conversations_of_person,
    conversations_of_staff,
    conversations_with_member,
)
from jobchat.directory.models import (
    Application,
    Job,
    JobPartner,
    JobStatus,
    Organization,
    OrgKind,
    User,
    UserKind,
)
from jobchat.directory.queries import (
    application_by_ext,
    job_by_ext,
    organization_by_ext,
    user_by_ext,
)
from jobchat.directory.schemas import (
    ApplicationIn,
    CandidateIn,
    JobIn,
    OrganizationIn,
    PreferencesIn,
    StaffIn,
)
from jobchat.directory.validation import email_problem, phone_or_problem, timezone_problem
from jobchat.errors import Conflict, Invalid
from jobchat.messages.actions import do_cancel_deliveries_to
from jobchat.privacy.audit import Party, record
from jobchat.privacy.models import AuditAction
from jobchat.quiet_hours import QuietHours, quiet_hours_of
from jobchat.sms.consent import do_follow_number, do_set_sms_consent
from jobchat.sms.models import ConsentSource

T = TypeVar("T")

# JOBCHAT_CANDIDATE_QUIET_HOURS's default: callers pass the setting's value.
DEFAULT_CANDIDATE_QUIET = QuietHours("21:00", "08:00")


def _insert(session: Session, obj: T, refetch: Callable[[], T | None]) -> tuple[T, bool]:
    """Insert ``obj``; if a concurrent upsert inserted the same external id first, return that."""
    try:
        with session.begin_nested():
            session.add(obj)
            session.flush()
    except IntegrityError:
        existing = refetch()
        if existing is None:
            raise
        return existing, False
    return obj, True


# --- organisations -------------------------------------------------------------------------------


def do_upsert_organization(
    session: Session, ext_id: str, data: OrganizationIn
) -> tuple[Organization, bool]:
    org = organization_by_ext(session, ext_id)
    if org is None:
        new = Organization(ext_id=ext_id, name=data.name, kind=data.kind)
        inserted, created = _insert(session, new, lambda: organization_by_ext(session, ext_id))
        if created:
            return inserted, True
        org = inserted
    if org.kind != data.kind and _organization_in_use(session, org):
        raise Conflict(
            "This organisation has staff, jobs or candidates; its kind cannot change.",
            code="organization_kind_locked",
        )
    org.name = data.name
    org.kind = data.kind
    return org, False


def _organization_in_use(session: Session, org: Organization) -> bool:
    return (
        session.scalar(
            select(User.id)
            .where((User.organization_id == org.id) | (User.source_partner_id == org.id))
            .limit(1)
        )
        is not None
        or session.scalar(select(Job.id).where(Job.employer_id == org.id).limit(1)) is not None
        or session.scalar(
            select(JobPartner.job_id).where(JobPartner.organization_id == org.id).limit(1)
        )
        is not None
    )


# --- staff and candidates ----------------------------------------------------------------------


def _contact_problems(
    email: str, phone: str | None, timezone: str | None, region: str
) -> tuple[dict[str, str], str | None]:
    problems: dict[str, str] = {}
    if (p := email_problem(email)) is not None:
        problems["email"] = p
    normalised = None
    if phone is not None and phone.strip():
        normalised, p = phone_or_problem(phone, region)
        if p is not None:
            problems["phone"] = p
    if timezone is not None and (p := timezone_problem(timezone)) is not None:
        problems["timezone"] = p
    return problems, normalised


def do_upsert_staff(
    session: Session, ext_id: str, data: StaffIn, *, region: str, now: datetime
) -> tuple[User, bool]:
    problems, phone = _contact_problems(data.email, data.phone, data.timezone, region)
    org = organization_by_ext(session, data.organization)
    if org is None:
        problems["organization"] = "there is no organization with that id"
    if problems:
        raise Invalid(problems)
    assert org is not None

    user = user_by_ext(session, UserKind.staff, ext_id)
    old_org = user.organization_id if user else None
    old_role = user.role if user else None
    reactivated = user is not None and _reactivate(user)
    if user is None:
        new = User(kind=UserKind.staff, ext_id=ext_id, name=data.name, email=data.email)
        new.timezone = data.timezone or "UTC"
        new.timezone_given = data.timezone is not None
        new.email_notifications = True
        user, created = _insert(session, new, lambda: user_by_ext(session, UserKind.staff, ext_id))
    else:
        created = False
    assert user is not None
    user.name = data.name
    user.email = data.email
    user.organization_id = org.id
    user.organization = org
    user.role = data.role
    sent = data.model_fields_set
    if "phone" in sent:
        user.phone = phone
    if "timezone" in sent and data.timezone is not None:
        user.timezone = data.timezone
        user.timezone_given = True
    session.flush()
    if reactivated:
        sync_conversations(session, conversations_of_person(session, user), now=now)
    if created or old_org != org.id or old_role != data.role:
        convs = conversations_of_staff(session, user.id, [old_org, org.id])
        sync_conversations(session, convs, now=now)
    return user, created


def do_upsert_candidate(
    session: Session,
    ext_id: str,
    data: CandidateIn,
    *,
    region: str,
    now: datetime,
    quiet: QuietHours | None = DEFAULT_CANDIDATE_QUIET,
    by: Party | None = None,
) -> tuple[User, bool]:
    """``quiet``: a new candidate's quiet hours (JOBCHAT_CANDIDATE_QUIET_HOURS); ``by``: the
    integration key the audit log names for a consent change."""
    # A candidate's phone number that is not valid is kept and flagged, not refused: the ATS
    # holds what the candidate typed, and everything else about them must still arrive.
    problems, phone = _contact_problems(data.email, None, data.timezone, region)
    phone_problem = None
    if data.phone is not None and data.phone.strip():
        phone, phone_problem = phone_or_problem(data.phone, region)
        if phone is None:
            phone = data.phone.strip()
    sent = data.model_fields_set
    partner: Organization | None = None
    if data.source_partner is not None:
        partner = organization_by_ext(session, data.source_partner)
        if partner is None:
            problems["source_partner"] = "there is no organization with that id"
        elif partner.kind != OrgKind.source_partner:
            problems["source_partner"] = "is not a source partner organization"
    if problems:
        raise Invalid(problems)

    user = user_by_ext(session, UserKind.candidate, ext_id)
    reactivated = user is not None and _reactivate(user)
    if user is None:
        new = User(kind=UserKind.candidate, ext_id=ext_id, name=data.name, email=data.email)
        new.timezone = "UTC"
        new.email_notifications = True
        new.sms_consent = False  # until the ATS says otherwise, recorded in the ledger below
        new.quiet_start = quiet.start if quiet else None
        new.quiet_end = quiet.end if quiet else None
        user, created = _insert(
            session, new, lambda: user_by_ext(session, UserKind.candidate, ext_id)
        )
    else:
        created = False
    assert user is not None
    old_partner = user.source_partner_id
    user.name = data.name
    user.email = data.email
    if "phone" in sent:
        user.phone = phone
        user.phone_problem = phone_problem if phone else None
    if "sms_consent" in sent:
        do_set_sms_consent(
            session, user, bool(data.sms_consent), source=ConsentSource.ats, now=now, by=by
        )
    if "phone" in sent:
        do_follow_number(session, user, now=now)  # a number that texted STOP keeps its say
    if "timezone" in sent and data.timezone is not None:
        user.timezone = data.timezone
        user.timezone_given = True
    if "source_partner" in sent:
        user.source_partner_id = partner.id if partner else None
        user.source_partner = partner
    session.flush()
    if reactivated:
        sync_conversations(session, conversations_of_person(session, user), now=now)
    elif user.source_partner_id != old_partner:
        sync_conversations(session, conversations_of_candidate(session, user.id), now=now)
    return user, created


def _reactivate(user: User) -> bool:
    """An upsert of a deactivated person brings them back (their memberships follow, by the
    same rules as for a newcomer); whether it did."""
    if user.is_active:
        return False
    user.deactivated_at = None
    return True


def do_deactivate_person(session: Session, user: User, *, now: datetime, actor: Party) -> None:
    """The ATS removed this person: they can no longer sign in (every token, session and
    sign-in link ends, and every process closes their sockets) and they leave every
    conversation (member.removed for each). What they wrote stays, under their name.
    Deactivating someone already deactivated changes nothing."""
    if not user.is_active:
        return
    user.deactivated_at = now
    session.flush()
    staff = user.kind != UserKind.candidate
    action = AuditAction.user_deactivated if staff else AuditAction.candidate_deactivated
    record(session, action, now=now, actor=actor, subject=Party.person(user))
    do_end_access(session, user=user, now=now)
    do_cancel_deliveries_to(session, user.id, now=now)
    sync_conversations(session, conversations_with_member(session, user.id), now=now)


def do_update_preferences(
    session: Session, user: User, data: PreferencesIn, *, now: datetime
) -> None:
    if data.timezone is not None:
        if (p := timezone_problem(data.timezone)) is not None:
            raise Invalid({"timezone": p})
        # The settings form posts the zone it shows, the default UTC included: only a change,
        # or a zone other than the default, says that the person chose it.
        if data.timezone != user.timezone or data.timezone != "UTC":
            user.timezone_given = True
        user.timezone = data.timezone
    if data.email_notifications is not None:
        user.email_notifications = data.email_notifications
    if data.notifications is not None:
        if user.is_staff and data.notifications.sms:
            raise Invalid({"notifications.sms": "text notifications are for candidates"})
        for channel, value in data.notifications.model_dump(exclude_none=True).items():
            setattr(user, f"{channel}_notifications", value)
    if "quiet_hours" in data.model_fields_set:
        window = data.quiet_hours
        if window is not None and window.start == window.end:
            raise Invalid({"quiet_hours": "starts and ends at the same time: use null for none"})
        user.quiet_start = window.start if window else None
        user.quiet_end = window.end if window else None
    if data.timezone is not None or "quiet_hours" in data.model_fields_set:
        _move_hold(user, now)


def _move_hold(user: User, now: datetime) -> None:
    """What quiet hours hold waits for the end of the window as it is now: released at once
    (by the next sweep) when now is outside it. The sweep reads only holds that are due, so a
    changed window must move the time here."""
    if user.notify_held_until is None:
        return
    window = quiet_hours_of(user.quiet_start, user.quiet_end)
    until = window.until(now, user.timezone) if window is not None else None
    user.notify_held_until = until if until is not None else now


# --- jobs and applications ---------------------------------------------------------------------


def do_upsert_job(session: Session, ext_id: str, data: JobIn, *, now: datetime) -> tuple[Job, bool]:
    problems: dict[str, str] = {}
    employer = organization_by_ext(session, data.employer)
    if employer is None:
        problems["employer"] = "there is no organization with that id"
    elif employer.kind != OrgKind.employer:
        problems["employer"] = "is not an employer organization"
    team: list[User] = []
    for ref in dict.fromkeys(data.team or []):
        member = user_by_ext(session, UserKind.staff, ref)
        if member is None or employer is None or member.organization_id != employer.id:
            problems["team"] = f"{ref!r} is not a staff user of the employer"
            break
        team.append(member)
    partners: list[Organization] = []
    for ref in dict.fromkeys(data.partners or []):
        org = organization_by_ext(session, ref)
        if org is None or org.kind not in (OrgKind.source_partner, OrgKind.agency):
            problems["partners"] = f"{ref!r} is not a source partner or agency organization"
            break
        partners.append(org)
    if problems:
        raise Invalid(problems)
    assert employer is not None

    job = job_by_ext(session, ext_id)
    if job is None:
        new = Job(ext_id=ext_id, title=data.title, employer_id=employer.id, employer=employer)
        new.status = data.status or JobStatus.open
        job, created = _insert(session, new, lambda: job_by_ext(session, ext_id))
    else:
        created = False
    assert job is not None
    if data.status is not None:
        # Closed: its conversations stay readable, and nothing new is posted in them
        # (access.may_post); open again, they take messages again.
        job.status = data.status
    changed = created or job.employer_id != employer.id
    job.title = data.title
    job.employer_id = employer.id
    job.employer = employer
    if data.team is not None and [u.id for u in job.team] != [u.id for u in team]:
        job.team = sorted(team, key=lambda u: u.id)
        changed = True
    if data.partners is not None and {o.id for o in job.partners} != {o.id for o in partners}:
        job.partners = sorted(partners, key=lambda o: o.id)
        changed = True
    session.flush()
    if changed:
        sync_conversations(session, conversations_of_job(session, job.id), now=now)
    return job, created


def do_upsert_application(
    session: Session, ext_id: str, data: ApplicationIn, *, now: datetime
) -> tuple[Application, bool]:
    problems: dict[str, str] = {}
    job = job_by_ext(session, data.job)
    if job is None:
        problems["job"] = "there is no job with that id"
    candidate = user_by_ext(session, UserKind.candidate, data.candidate)
    if candidate is None:
        problems["candidate"] = "there is no candidate with that id"
    stage_owner = None
    if data.stage_owner is not None:
        stage_owner = user_by_ext(session, UserKind.staff, data.stage_owner)
        if stage_owner is None or (
            job is not None and stage_owner.organization_id != job.employer_id
        ):
            problems["stage_owner"] = "is not a staff user of the job's employer"
    agency_user = None
    if data.agency_user is not None:
        agency_user = user_by_ext(session, UserKind.staff, data.agency_user)
        if (
            agency_user is None
            or agency_user.organization is None
            or agency_user.organization.kind != OrgKind.agency
        ):
            problems["agency_user"] = "is not a staff user of an agency"
    if problems:
        raise Invalid(problems)
    assert job is not None and candidate is not None

    app = application_by_ext(session, ext_id)
    if app is not None and (app.job_id != job.id or app.candidate_id != candidate.id):
        raise Conflict(
            "An application's job and candidate cannot change; create a new application.",
            code="application_context_locked",
        )
    other = session.scalars(
        select(Application).where(
            Application.job_id == job.id, Application.candidate_id == candidate.id
        )
    ).one_or_none()
    if other is not None and other.ext_id != ext_id:
        raise Conflict(
            f"The candidate already has application {other.ext_id!r} on this job.",
            code="duplicate_application",
        )
    sent = data.model_fields_set
    if app is None:
        new = Application(
            ext_id=ext_id,
            job_id=job.id,
            job=job,
            candidate_id=candidate.id,
            candidate=candidate,
            stage=data.stage,
            applied_at=data.applied_at or now,
        )
        app, created = _insert(session, new, lambda: application_by_ext(session, ext_id))
    else:
        created = False
    assert app is not None
    app.stage = data.stage
    if "stage_owner" in sent or created:
        app.stage_owner_id = stage_owner.id if stage_owner else None
        app.stage_owner = stage_owner
    if "agency_user" in sent or created:
        app.agency_user_id = agency_user.id if agency_user else None
        app.agency_user = agency_user
    if data.applied_at is not None:
        app.applied_at = data.applied_at
    session.flush()
    sync_conversations(session, conversations_of_application(session, app), now=now)
    return app, created

"""Who belongs in a conversation, from the table in DESIGN.md (read only).

``expected_member_ids`` is the rule; a deactivated person is in none (they come back, by the
same rule, when the ATS reactivates them). ``conversations_of_*`` find the conversations a change of
context can affect (a stage, a team, a job's partners, a candidate's source partner, a user's
organisation or role); the action that made the change passes them to
``conversations.actions.sync_conversations`` in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from jobchat.conversations.context import Context
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.directory.models import (
    RELOCATION_STAGES,
    Application,
    Job,
    JobPartner,
    JobTeam,
    Role,
    User,
    UserKind,
)


def staff_ids_of(session: Session, org_ids: Iterable[int | None]) -> set[int]:
    ids = [o for o in org_ids if o is not None]
    if not ids:
        return set()
    rows = session.scalars(
        select(User.id).where(User.kind == UserKind.staff, User.organization_id.in_(ids))
    )
    return set(rows)


def employer_access_ids(session: Session, job: Job) -> set[int]:
    """E: the job's team and the employer's admins, or all employer staff when there is no team."""
    team = set(session.scalars(select(JobTeam.user_id).where(JobTeam.job_id == job.id)))
    employer_staff = session.execute(
        select(User.id, User.role).where(
            User.kind == UserKind.staff, User.organization_id == job.employer_id
        )
    ).all()
    if not team:
        return {user_id for user_id, _ in employer_staff}
    # A team member who has since left the employer no longer has access; the job stays
    # restricted to the rest of its team.
    return {user_id for user_id, role in employer_staff if user_id in team or role == Role.admin}


def has_employer_access(session: Session, user: User, job: Job) -> bool:
    """Whether ``user`` is in E for ``job``, without building the whole set."""
    if not user.is_staff or user.organization_id != job.employer_id:
        return False
    if user.role == Role.admin:
        return True
    team = set(session.scalars(select(JobTeam.user_id).where(JobTeam.job_id == job.id)))
    return not team or user.id in team


def partner_org_ids(session: Session, job_id: int) -> set[int]:
    rows = session.scalars(select(JobPartner.organization_id).where(JobPartner.job_id == job_id))
    return set(rows)


def expected_member_ids(session: Session, conv: Conversation) -> set[int]:
    return _active(
        session,
        _by_context(
            session,
            _Shape(
                kind=Kind(conv.kind),
                job=conv.job,
                candidate=conv.candidate,
                application=conv.application,
                partner_id=conv.partner_id,
                employer_user_id=conv.employer_user_id,
                agency_user_id=conv.agency_user_id,
            ),
        ),
    )


def context_member_ids(session: Session, context: Context) -> set[int]:
    """Who would be in the conversation of ``context`` if it were opened now (the composer
    that opens it shows them): the same rule as ``expected_member_ids``."""
    return _active(
        session,
        _by_context(
            session,
            _Shape(
                kind=context.kind,
                job=context.job,
                candidate=context.candidate,
                application=context.application,
                partner_id=context.partner.id if context.partner else None,
                employer_user_id=context.employer_user.id if context.employer_user else None,
                agency_user_id=context.agency_user.id if context.agency_user else None,
            ),
        ),
    )


def context_members(session: Session, context: Context) -> list[User]:
    """The people ``context_member_ids`` names, with their organisations loaded."""
    ids = context_member_ids(session, context)
    query = select(User).where(User.id.in_(ids)).options(selectinload(User.organization))
    return list(session.scalars(query))


@dataclass(frozen=True)
class _Shape:
    """What the membership rule reads of a conversation, stored or about to be."""

    kind: Kind
    job: Job | None
    candidate: User | None
    application: Application | None
    partner_id: int | None
    employer_user_id: int | None
    agency_user_id: int | None


def _active(session: Session, ids: set[int]) -> set[int]:
    if not ids:
        return ids
    # Deactivated people leave every conversation, whatever their part in its context.
    inactive = session.scalars(
        select(User.id).where(User.id.in_(ids), User.deactivated_at.is_not(None))
    )
    return ids.difference(inactive)


def _by_context(session: Session, conv: _Shape) -> set[int]:
    kind = conv.kind
    if kind in (Kind.job_partner, Kind.job_partners, Kind.job_relocation):
        assert conv.job is not None
        members = employer_access_ids(session, conv.job)
        partners = partner_org_ids(session, conv.job.id)
        if kind is Kind.job_partner:
            members |= staff_ids_of(
                session, [conv.partner_id] if conv.partner_id in partners else []
            )
        else:
            members |= staff_ids_of(session, partners)
        if kind is Kind.job_relocation:
            members |= set(
                session.scalars(
                    select(Application.candidate_id).where(
                        Application.job_id == conv.job.id,
                        Application.stage.in_([str(s) for s in RELOCATION_STAGES]),
                    )
                )
            )
        return members
    if kind is Kind.candidate_partner:
        # The partner's staff, while it is still the candidate's source partner.
        assert conv.candidate is not None
        still_theirs = conv.partner_id == conv.candidate.source_partner_id
        return {conv.candidate.id} | staff_ids_of(
            session, [conv.partner_id] if still_theirs else []
        )

    app = conv.application
    assert app is not None
    employer_side = employer_access_ids(session, app.job)
    if kind is Kind.case:
        return (
            {app.candidate_id}
            | staff_ids_of(session, [app.candidate.source_partner_id])
            | employer_side
        )
    if kind is Kind.application:
        return {app.candidate_id} | employer_side
    # agency and agency_private: the agency side is the agency user this thread was opened
    # with, and only while they are still the application's agency user.
    agency_side = (
        {conv.agency_user_id}
        if conv.agency_user_id is not None and conv.agency_user_id == app.agency_user_id
        else set()
    )
    if kind is Kind.agency:
        return employer_side | agency_side
    assert kind is Kind.agency_private
    employer_user = (
        {conv.employer_user_id} if conv.employer_user_id in employer_side else set[int]()
    )
    return employer_user | agency_side


def conversations_of_job(session: Session, job_id: int) -> list[Conversation]:
    """Every conversation whose members depend on the job (its own and its applications')."""
    return list(
        session.scalars(
            select(Conversation).where(Conversation.job_id == job_id).order_by(Conversation.id)
        )
    )


def conversations_of_application(session: Session, app: Application) -> list[Conversation]:
    return list(
        session.scalars(
            select(Conversation)
            .where(
                or_(
                    Conversation.application_id == app.id,
                    (Conversation.kind == Kind.job_relocation)
                    & (Conversation.job_id == app.job_id),
                )
            )
            .order_by(Conversation.id)
        )
    )


def conversations_of_candidate(session: Session, candidate_id: int) -> list[Conversation]:
    return list(
        session.scalars(
            select(Conversation)
            .where(Conversation.candidate_id == candidate_id)
            .order_by(Conversation.id)
        )
    )


def conversations_of_staff(
    session: Session, user_id: int, org_ids: Iterable[int | None]
) -> list[Conversation]:
    """Conversations a staff user may join or leave when their organisation or role changes."""
    orgs = [o for o in org_ids if o is not None]
    jobs = select(Job.id).where(
        or_(
            Job.employer_id.in_(orgs),
            Job.id.in_(select(JobPartner.job_id).where(JobPartner.organization_id.in_(orgs))),
        )
    )
    candidates = select(User.id).where(User.source_partner_id.in_(orgs))
    mine = select(Member.conversation_id).where(Member.user_id == user_id)
    return list(
        session.scalars(
            select(Conversation)
            .where(
                or_(
                    Conversation.id.in_(mine),
                    Conversation.job_id.in_(jobs),
                    Conversation.candidate_id.in_(candidates),
                )
            )
            .order_by(Conversation.id)
        )
    )


def conversations_with_member(session: Session, user_id: int) -> list[Conversation]:
    """The conversations the user is a member of now: all that their deactivation changes."""
    mine = select(Member.conversation_id).where(Member.user_id == user_id)
    return list(
        session.scalars(
            select(Conversation).where(Conversation.id.in_(mine)).order_by(Conversation.id)
        )
    )


def conversations_of_person(session: Session, user: User) -> list[Conversation]:
    """Every conversation the person is in or could be in by the rules: what their
    reactivation affects."""
    if user.is_candidate:
        their_jobs = select(Application.job_id).where(Application.candidate_id == user.id)
        return list(
            session.scalars(
                select(Conversation)
                .where(
                    or_(
                        Conversation.candidate_id == user.id,
                        (Conversation.kind == Kind.job_relocation)
                        & Conversation.job_id.in_(their_jobs),
                    )
                )
                .order_by(Conversation.id)
            )
        )
    found = {c.id: c for c in conversations_of_staff(session, user.id, [user.organization_id])}
    # An agency user's threads, and a hiring-team user's private ones, whatever organisations
    # the job is shared with.
    for conv in session.scalars(
        select(Conversation).where(
            or_(Conversation.agency_user_id == user.id, Conversation.employer_user_id == user.id)
        )
    ):
        found.setdefault(conv.id, conv)
    return [found[i] for i in sorted(found)]

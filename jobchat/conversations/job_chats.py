"""What the job pages and the candidate portal list (read only).

- ``visible_jobs``: the jobs a staff user can see, with how many of their candidates the user can
  see and what is unread in the job's chats.
- ``job_overview`` and ``job_chats``: one job's page. A job's chats are the chat with each of its
  partner organisations, the group chat with all of them and the relocation chat; each offered
  as the conversation (when the viewer is in it) or as how to start it (when they may).
- ``candidate_portal``: a candidate's applications with the chats about each, and the chat with
  their source partner.

Conversations are found with the inbox query (so only those the viewer is a member of) and
drawn with ``render_conversations``; who may see or start what is asked of ``jobchat.access``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from jobchat import access
from jobchat.conversations.context import ContextRefs
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.conversations.queries import InboxQuery, inbox, like_pattern
from jobchat.conversations.render import render_conversations
from jobchat.conversations.schemas import ConversationOut
from jobchat.directory.models import (
    RELOCATION_STAGES,
    Application,
    Job,
    Organization,
    Stage,
    User,
)

JOB_KINDS = (Kind.job_partner, Kind.job_partners, Kind.job_relocation)
_BATCH = 100


def _memberships(
    session: Session, user: User, query: InboxQuery
) -> list[tuple[Conversation, Member]]:
    """Every conversation of the inbox query, however many pages it takes."""
    rows: list[tuple[Conversation, Member]] = []
    cursor: str | None = None
    while True:
        page, cursor = inbox(session, user, query, limit=_BATCH, cursor=cursor)
        rows += page
        if cursor is None:
            return rows


def _rendered(
    session: Session, user: User, queries: list[InboxQuery]
) -> list[tuple[Conversation, ConversationOut]]:
    rows = [row for query in queries for row in _memberships(session, user, query)]
    return list(
        zip((conv for conv, _ in rows), render_conversations(session, user, rows), strict=True)
    )


@dataclass(frozen=True)
class StartForm:
    """The fields of a ``POST /conversations/start`` that opens a chat."""

    kind: Kind
    job: str | None = None
    partner: str | None = None
    candidate: str | None = None

    @property
    def refs(self) -> ContextRefs:
        return ContextRefs(job=self.job, partner=self.partner, candidate=self.candidate)

    @property
    def fields(self) -> dict[str, str]:
        named = {"job": self.job, "partner": self.partner, "candidate": self.candidate}
        return {"kind": self.kind.value} | {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class ChatSlot:
    """One chat a page offers: the conversation if the viewer is in it; else the form that starts
    it if they may; else neither (not started yet, by someone else)."""

    key: str
    kind: Kind
    label: str
    conversation: ConversationOut | None = None
    start: StartForm | None = None
    people: list[str] = field(default_factory=list)
    note: str = ""


# --- the jobs list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobListing:
    ext_id: str
    title: str
    employer: str
    candidates: int
    unread: int


def visible_jobs(
    session: Session, user: User, *, q: str | None, after: str | None, limit: int
) -> tuple[list[JobListing], str | None]:
    """The jobs ``user`` can see, by title, ``limit`` at a time after the job ``after``;
    with the next page's ``after`` when there is one."""
    candidates = (
        select(func.count())
        .select_from(Application)
        .where(Application.job_id == Job.id, access.applications_visible_sql(user))
        .correlate(Job)
        .scalar_subquery()
    )
    unread = (
        select(func.coalesce(func.sum(Member.unread_count), 0))
        .select_from(Member)
        .join(Conversation, Conversation.id == Member.conversation_id)
        .where(
            Member.user_id == user.id,
            Conversation.job_id == Job.id,
            Conversation.kind.in_([str(k) for k in JOB_KINDS]),
        )
        .correlate(Job)
        .scalar_subquery()
    )
    stmt = (
        select(Job.ext_id, Job.title, Organization.name, candidates, unread)
        .join(Organization, Organization.id == Job.employer_id)
        .where(access.jobs_visible_sql(user))
        .order_by(Job.title, Job.id)
        .limit(limit + 1)
    )
    if q:
        pattern = like_pattern(q)
        stmt = stmt.where(
            func.lower(Job.title).like(pattern, escape="\\")
            | func.lower(Organization.name).like(pattern, escape="\\")
        )
    if after is not None:
        last = session.execute(select(Job.title, Job.id).where(Job.ext_id == after)).one_or_none()
        if last is not None:
            stmt = stmt.where(tuple_(Job.title, Job.id) > tuple_(*last))
    rows = session.execute(stmt).all()
    items = [
        JobListing(ext_id=ext, title=title, employer=employer, candidates=n, unread=int(u))
        for ext, title, employer, n, u in rows[:limit]
    ]
    return items, (items[-1].ext_id if len(rows) > limit else None)


# --- one job -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """An application as the job's overview shows it."""

    ext_id: str
    candidate_ext: str
    candidate: str
    stage: Stage
    applied_at: datetime
    # The case chat about it (candidate, source partner, employer): the viewer's conversation,
    # or, when they have none, whether they may start it.
    case_chat: int | None = None
    may_start_case: bool = False


@dataclass(frozen=True)
class JobOverview:
    job: Job
    employer: str
    # Empty: the job is worked by the whole employer organisation.
    team: list[User]
    partners: list[Organization]
    cases: list[Case]
    employer_side: bool
    unread: int


def _visible_cases(
    session: Session, user: User, job: Job, *, with_chats: bool = False
) -> list[Case]:
    rows = session.execute(
        select(Application, User)
        .join(User, User.id == Application.candidate_id)
        .where(Application.job_id == job.id, access.applications_visible_sql(user))
        .order_by(User.name, Application.id)
    ).all()
    chats: dict[int | None, int] = {}
    if with_chats:
        chats = {
            conv.application_id: conv.id
            for conv, _member in _memberships(
                session, user, InboxQuery(kind=Kind.case, job=job.ext_id)
            )
        }
    return [
        Case(
            ext_id=app.ext_id,
            candidate_ext=cand.ext_id,
            candidate=cand.name,
            stage=Stage(app.stage),
            applied_at=app.applied_at,
            case_chat=chats.get(app.id),
            may_start_case=with_chats
            and app.id not in chats
            and access.may_start_about(session, user, Kind.case, app),
        )
        for app, cand in rows
    ]


def job_overview(session: Session, user: User, job: Job) -> JobOverview:
    unread = session.scalar(
        select(func.coalesce(func.sum(Member.unread_count), 0))
        .join(Conversation, Conversation.id == Member.conversation_id)
        .where(
            Member.user_id == user.id,
            Conversation.job_id == job.id,
            Conversation.kind.in_([str(k) for k in JOB_KINDS]),
        )
    )
    return JobOverview(
        job=job,
        employer=job.employer.name,
        team=list(job.team),
        partners=list(job.partners),
        cases=_visible_cases(session, user, job, with_chats=True),
        employer_side=access.works_on_job(session, user, job),
        unread=int(unread or 0),
    )


def job_chats(session: Session, user: User, job: Job) -> list[ChatSlot]:
    """The job's chats as ``user`` is offered them: employer staff see one chat per partner, a
    partner's staff only their own; both see the group and the relocation chat."""
    employer_side = access.works_on_job(session, user, job)
    partner_ids = {p.id for p in job.partners}
    in_partner = user.is_staff and user.organization_id in partner_ids
    found = _rendered(session, user, [InboxQuery(kind=kind, job=job.ext_id) for kind in JOB_KINDS])
    by_key = {(Kind(conv.kind), conv.partner_id): out for conv, out in found}

    def offer(key: str, label: str, form: StartForm, partner_id: int | None = None) -> ChatSlot:
        conversation = by_key.pop((form.kind, partner_id), None)
        start = None
        if conversation is None and access.may_start(session, user, form.kind, form.refs):
            start = form
        return ChatSlot(key, form.kind, label, conversation=conversation, start=start)

    slots: list[ChatSlot] = []
    for partner in job.partners:
        if employer_side or user.organization_id == partner.id:
            slots.append(
                offer(
                    f"partner-{partner.ext_id}",
                    partner.name,
                    StartForm(Kind.job_partner, job=job.ext_id, partner=partner.ext_id),
                    partner.id,
                )
            )
    # A chat with an organisation the job is no longer shared with: its history stays readable.
    for (kind, _partner_id), conversation in list(by_key.items()):
        if kind is Kind.job_partner:
            label = conversation.title.removeprefix(f"{job.title} · ")
            slots.append(
                ChatSlot(
                    f"former-{conversation.id}",
                    kind,
                    label,
                    conversation=conversation,
                    note="No longer a partner of this job",
                )
            )
    if employer_side or in_partner or (Kind.job_partners, None) in by_key:
        slots.append(
            offer("partners", "All partners", StartForm(Kind.job_partners, job=job.ext_id))
        )
    if employer_side or in_partner or (Kind.job_relocation, None) in by_key:
        slot = offer("relocation", "Relocation", StartForm(Kind.job_relocation, job=job.ext_id))
        if slot.conversation is not None:
            people = [m.name for m in slot.conversation.members if m.kind == "candidate"]
        else:
            people = [
                c.candidate
                for c in _visible_cases(session, user, job)
                if c.stage in RELOCATION_STAGES
            ]
        waiting = slot.conversation is None and not people
        slots.append(
            ChatSlot(
                slot.key,
                slot.kind,
                slot.label,
                conversation=slot.conversation,
                start=slot.start,
                people=people,
                # access refuses it until then (no_relocation_candidates): say why.
                note="Opens once a candidate accepts an offer" if waiting else "",
            )
        )
    return slots


# --- the candidate portal ------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalApplication:
    ext_id: str
    job_title: str
    employer: str
    stage: Stage
    applied_at: datetime
    chats: list[ChatSlot]


@dataclass(frozen=True)
class Portal:
    applications: list[PortalApplication]
    source_partner: str | None
    # The chat with the current source partner first, then any with earlier ones.
    partner_chats: list[ChatSlot]


def candidate_portal(session: Session, user: User) -> Portal:
    """The candidate's own applications, newest first, each with its chats: with the recruiter,
    the case chat (source partner and employer) and, from an accepted offer on, the relocation
    chat. Only the chats they are in; a candidate starts none of these."""
    apps = session.scalars(
        select(Application)
        .where(Application.candidate_id == user.id)
        .options(selectinload(Application.job).selectinload(Job.employer))
        .order_by(Application.applied_at.desc(), Application.id.desc())
    ).all()
    kinds = (Kind.application, Kind.case, Kind.job_relocation, Kind.candidate_partner)
    found = _rendered(session, user, [InboxQuery(kind=kind) for kind in kinds])
    by_app = {(Kind(c.kind), c.application_id): out for c, out in found if c.application_id}
    by_job = {c.job_id: out for c, out in found if c.kind == Kind.job_relocation}
    partner = user.source_partner

    applications = []
    for app in apps:
        employer = app.job.employer.name
        chats = [
            ChatSlot(
                "application",
                Kind.application,
                "Your recruiter",
                conversation=by_app.get((Kind.application, app.id)),
            )
        ]
        case = by_app.get((Kind.case, app.id))
        # The case chat is the source partner's and the employer's together with the candidate.
        if partner is not None or case is not None:
            chats.append(ChatSlot("case", Kind.case, "Your case", conversation=case))
        if app.stage in RELOCATION_STAGES:
            chats.append(
                ChatSlot(
                    "relocation",
                    Kind.job_relocation,
                    "Relocation",
                    conversation=by_job.get(app.job_id),
                )
            )
        applications.append(
            PortalApplication(
                ext_id=app.ext_id,
                job_title=app.job.title,
                employer=employer,
                stage=Stage(app.stage),
                applied_at=app.applied_at,
                chats=chats,
            )
        )

    partner_chats: list[ChatSlot] = []
    if partner is not None:
        current = next(
            (
                out
                for c, out in found
                if c.kind == Kind.candidate_partner and c.partner_id == partner.id
            ),
            None,
        )
        form = StartForm(Kind.candidate_partner, candidate=user.ext_id)
        may = current is None and access.may_start(session, user, form.kind, form.refs)
        partner_chats.append(
            ChatSlot(
                "partner",
                Kind.candidate_partner,
                partner.name,
                conversation=current,
                start=form if may else None,
            )
        )
    for c, out in found:
        if c.kind == Kind.candidate_partner and (partner is None or c.partner_id != partner.id):
            partner_chats.append(
                ChatSlot(
                    f"partner-{c.id}",
                    Kind.candidate_partner,
                    out.title,
                    conversation=out,
                    note="Your earlier source partner",
                )
            )
    return Portal(
        applications=applications,
        source_partner=partner.name if partner else None,
        partner_chats=partner_chats,
    )

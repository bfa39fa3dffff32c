"""Who may see and do what. Every check the API makes lives here.

Like Zulip's ``access_*`` helpers, the functions that fetch also authorise, and they answer
"not found" both for what does not exist and for what the caller may not see, so a response never
tells an outsider that a conversation exists. 403 is kept for things the caller can see but may
not do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, false, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from jobchat.conversations.context import (
    Context,
    ContextRefs,
    Loaded,
    load_other_refs,
    load_refs,
)
from jobchat.conversations.membership import has_employer_access, partner_org_ids
from jobchat.conversations.models import ONE_CANDIDATE_KINDS, Conversation, Kind, Member, Status
from jobchat.db.loaded import Loader
from jobchat.db.prepared import Prepared
from jobchat.directory.models import (
    RELOCATION_STAGES,
    Application,
    Job,
    JobPartner,
    JobStatus,
    JobTeam,
    Role,
    User,
    UserKind,
)
from jobchat.directory.queries import job_by_ext, user_by_ext
from jobchat.errors import Conflict, Forbidden, Invalid, NotFound
from jobchat.events.models import EventType
from jobchat.files.models import Attachment
from jobchat.messages.models import HiddenMessage, Message

CONVERSATION_NOT_FOUND = "There is no conversation with that id."
MESSAGE_NOT_FOUND = "There is no message with that id."
ATTACHMENT_NOT_FOUND = "There is no attachment with that id."


# --- seeing the things conversations are about -------------------------------------------------


def can_see_job(session: Session, user: User, job: Job) -> bool:
    if user.is_candidate:
        return _exists(session, Application.job_id == job.id, Application.candidate_id == user.id)
    return (
        has_employer_access(session, user, job)
        or user.organization_id in partner_org_ids(session, job.id)
        or _exists(session, Application.job_id == job.id, Application.agency_user_id == user.id)
    )


def can_see_application(session: Session, user: User, app: Application) -> bool:
    if user.is_candidate:
        return app.candidate_id == user.id
    return (
        app.agency_user_id == user.id
        or _is_source_partner_staff(user, app.candidate)
        or has_employer_access(session, user, app.job)
    )


def can_see_candidate(session: Session, user: User, candidate: User) -> bool:
    if user.is_candidate:
        return user.id == candidate.id
    if _is_source_partner_staff(user, candidate):
        return True
    apps = session.scalars(select(Application).where(Application.candidate_id == candidate.id))
    return any(can_see_application(session, user, app) for app in apps)


def _is_source_partner_staff(user: User, candidate: User) -> bool:
    return (
        user.is_staff
        and candidate.source_partner_id is not None
        and user.organization_id == candidate.source_partner_id
    )


def _exists(session: Session, *where: object) -> bool:
    return bool(session.scalar(select(exists().where(*where))))  # type: ignore[arg-type]


def access_job(session: Session, user: User, ext_id: str) -> Job:
    """The job with this external id, if ``user`` may see it: "not found" for both."""
    job = job_by_ext(session, ext_id)
    if job is None or not can_see_job(session, user, job):
        raise NotFound("There is no job with that id.")
    return job


def works_on_job(session: Session, user: User, job: Job) -> bool:
    """Whether ``user`` is on the employer side of ``job`` (E in DESIGN.md)."""
    return has_employer_access(session, user, job)


# The same rules as SQL, for pages that list what a user can see in one statement. Each must
# agree with the function it mirrors (tests/test_web_jobs.py compares them for every persona).


def _employer_access_sql(user: User, job: type[Job]) -> ColumnElement[bool]:
    """``has_employer_access`` for the rows of ``job`` (an entity or an alias of one)."""
    if not user.is_staff or user.organization_id is None:
        return false()
    same_org = job.employer_id == user.organization_id
    if user.role == Role.admin:
        return same_org
    on_team = exists().where(JobTeam.job_id == job.id, JobTeam.user_id == user.id)
    has_team = exists().where(JobTeam.job_id == job.id)
    return and_(same_org, or_(~has_team, on_team))


def jobs_visible_sql(user: User) -> ColumnElement[bool]:
    """``can_see_job`` as a condition on ``Job``."""
    if user.is_candidate:
        return Job.id.in_(select(Application.job_id).where(Application.candidate_id == user.id))
    shared = (
        Job.id.in_(
            select(JobPartner.job_id).where(JobPartner.organization_id == user.organization_id)
        )
        if user.organization_id is not None
        else false()
    )
    submitted = Job.id.in_(select(Application.job_id).where(Application.agency_user_id == user.id))
    return or_(_employer_access_sql(user, Job), shared, submitted)


def applications_visible_sql(user: User) -> ColumnElement[bool]:
    """``can_see_application`` as a condition on ``Application``."""
    if user.is_candidate:
        return Application.candidate_id == user.id
    # Aliases, so that neither subquery correlates with a Job or User of the enclosing query.
    candidate = aliased(User)
    job = aliased(Job)
    partner_side = (
        Application.candidate_id.in_(
            select(candidate.id).where(candidate.source_partner_id == user.organization_id)
        )
        if user.is_staff and user.organization_id is not None
        else false()
    )
    employer_side = Application.job_id.in_(select(job.id).where(_employer_access_sql(user, job)))
    return or_(Application.agency_user_id == user.id, partner_side, employer_side)


def check_candidate(user: User) -> None:
    if not user.is_candidate:
        raise Forbidden("This is for candidates.", code="candidates_only")


# --- starting a conversation -------------------------------------------------------------------


def access_start(
    session: Session, user: User, kind: Kind, refs: ContextRefs
) -> tuple[Context, Conversation | None]:
    """Authorise ``user`` to open (or reach) the conversation of ``kind`` the refs name.

    Returns the context, and its conversation if one exists already. A member of that
    conversation may always reach it; anyone else must be allowed to start it. In order: 404 for
    a context that is unknown or not visible, 422 for one that makes no sense, 403 for a visible
    context the user may not open a conversation in.
    """
    loaded = load_refs(session, kind, refs)
    if not _can_see_context(session, user, loaded):
        raise NotFound(f"There is no {_primary_name(kind)} with that id.")
    load_other_refs(session, refs, loaded)
    context = _build_context(user, loaded)
    existing = session.scalars(
        select(Conversation).where(Conversation.context_key == context.key)
    ).one_or_none()
    if existing is not None and is_member(session, user, existing.id):
        return context, existing
    if not _may_start(session, user, context):
        raise Forbidden(
            _START_REFUSALS.get(kind, "You may not start this kind of conversation."),
            code="cannot_start",
        )
    if existing is None and context.job is not None and _closed(context.job):
        raise _job_closed()
    if existing is None and kind is Kind.case and not _has_case_partner(context):
        raise Conflict(
            "The candidate has no source partner: a case chat is the candidate, their source "
            "partner and the hiring team. Chat with the candidate instead.",
            code="no_source_partner",
        )
    if (
        existing is None
        and kind is Kind.job_relocation
        and not _anyone_relocating(session, context)
    ):
        raise Conflict(
            "No candidate on this job has accepted an offer yet: the relocation chat opens "
            "once one has.",
            code="no_relocation_candidates",
        )
    return context, existing


def _anyone_relocating(session: Session, context: Context) -> bool:
    """Whether a candidate of the job has accepted an offer (DESIGN.md: the relocation chat is
    for them; without one it would be the partners' group chat under another name)."""
    assert context.job is not None
    return _exists(
        session,
        Application.job_id == context.job.id,
        Application.stage.in_([str(s) for s in RELOCATION_STAGES]),
    )


def _has_case_partner(context: Context) -> bool:
    """Whether a case chat has the partner it is for (DESIGN.md: the candidate, their source
    partner and the hiring team; without one it is the application chat under another name)."""
    return context.candidate is not None and context.candidate.source_partner_id is not None


def may_start(session: Session, user: User, kind: Kind, refs: ContextRefs) -> bool:
    """Whether ``access_start`` would let ``user`` open (or reach) this conversation: whether a
    page offers them a "Start chat" button."""
    try:
        access_start(session, user, kind, refs)
    # Conflict: the job is closed, nobody is relocating yet, or a case has no source partner.
    except (NotFound, Forbidden, Invalid, Conflict):
        return False
    return True


_START_REFUSALS = {
    Kind.agency_private: (
        "An agency user may open a private thread only with the candidate's stage owner or "
        "someone they already have a private thread with."
    ),
}


def _primary_name(kind: Kind) -> str:
    if kind in (Kind.job_partner, Kind.job_partners, Kind.job_relocation):
        return "job"
    return "candidate" if kind is Kind.candidate_partner else "application"


def _can_see_context(session: Session, user: User, loaded: Loaded) -> bool:
    """Whether the main object exists and ``user`` may see it."""
    if loaded.application is not None:
        return can_see_application(session, user, loaded.application)
    if loaded.job is not None:
        return can_see_job(session, user, loaded.job)
    if loaded.candidate is not None:
        return can_see_candidate(session, user, loaded.candidate)
    return False


def _build_context(user: User, loaded: Loaded) -> Context:
    """Check that the (visible) context makes sense for the kind; 422 where it does not."""
    kind = loaded.kind
    if kind is Kind.job_partner:
        assert loaded.job is not None and loaded.partner is not None
        if loaded.partner not in loaded.job.partners:
            raise Invalid({"partner": "is not a partner of this job"})
        return Context(kind, job=loaded.job, partner=loaded.partner)
    if kind in (Kind.job_partners, Kind.job_relocation):
        return Context(kind, job=loaded.job)
    if kind is Kind.candidate_partner:
        assert loaded.candidate is not None
        if loaded.candidate.source_partner is None:
            raise Invalid({"candidate": "has no source partner"})
        # The partner is part of the context: a candidate's next source partner starts a fresh
        # one-to-one and never reads what the candidate said to the previous one.
        return Context(kind, candidate=loaded.candidate, partner=loaded.candidate.source_partner)

    app = loaded.application
    assert app is not None
    if kind in (Kind.case, Kind.application):
        return Context(kind, job=app.job, candidate=app.candidate, application=app)
    if app.agency_user is None:
        raise Invalid({"application": "has no agency user"})
    if kind is Kind.agency:
        return Context(
            kind, job=app.job, candidate=app.candidate, application=app, agency_user=app.agency_user
        )
    # agency_private: one employer user and the application's agency user.
    if user.id == app.agency_user_id:
        if loaded.with_user is None:
            raise Invalid({"with_user": "required: the hiring-team user to talk to privately"})
        employer_user = loaded.with_user
    else:
        if loaded.with_user is not None and loaded.with_user.id not in (
            app.agency_user_id,
            user.id,
        ):
            raise Invalid({"with_user": "must be the application's agency user"})
        employer_user = user
    return Context(
        kind,
        job=app.job,
        candidate=app.candidate,
        application=app,
        employer_user=employer_user,
        agency_user=app.agency_user,
    )


def _may_start(session: Session, user: User, ctx: Context) -> bool:
    kind = ctx.kind
    if kind in (Kind.job_partner, Kind.job_partners, Kind.job_relocation):
        assert ctx.job is not None
        if has_employer_access(session, user, ctx.job):
            return True
        return (
            kind is Kind.job_partner
            and ctx.partner is not None
            and user.is_staff
            and user.organization_id == ctx.partner.id
        )
    if kind is Kind.candidate_partner:
        assert ctx.candidate is not None
        return user.id == ctx.candidate.id or _is_source_partner_staff(user, ctx.candidate)

    app = ctx.application
    assert app is not None
    employer_side = has_employer_access(session, user, app.job)
    if kind is Kind.case:
        return employer_side or _is_source_partner_staff(user, app.candidate)
    if kind is Kind.application:
        return employer_side
    if kind is Kind.agency:
        return employer_side or user.id == app.agency_user_id
    assert ctx.employer_user is not None
    if user.id == ctx.employer_user.id:
        return employer_side
    if user.id != app.agency_user_id:
        return False
    # The agency user may open a private thread with a hiring-team user who is the stage owner,
    # or with one they have talked to privately before (about any candidate).
    partner = ctx.employer_user
    if not partner.is_active or not has_employer_access(session, partner, app.job):
        return False
    return partner.id == app.stage_owner_id or _exists(
        session,
        Conversation.kind == Kind.agency_private,
        Conversation.agency_user_id == user.id,
        Conversation.employer_user_id == partner.id,
    )


# --- conversations and messages the user is in -------------------------------------------------


# One prepared statement: a read that needs neither the conversation nor the member row (the
# history page) answered who may read in a tenth of the time loading them took.
_IS_MEMBER = Prepared(
    select(Member.user_id).where(
        Member.conversation_id == bindparam("conversation_id"),
        Member.user_id == bindparam("user_id"),
    )
)


def is_member(session: Session, user: User, conversation_id: int) -> bool:
    # As a query through the session would, what the session holds unflushed is written first
    # (a member added or removed in this transaction counts); nothing to flush costs nothing.
    session.flush()
    params = {"conversation_id": conversation_id, "user_id": user.id}
    return bool(_IS_MEMBER.run(session.connection(), params).rows)


def require_member(session: Session, user: User, conversation_id: int) -> None:
    """What ``access_conversation`` decides, for a read that needs nothing else of it."""
    if not is_member(session, user, conversation_id):
        raise NotFound(CONVERSATION_NOT_FOUND)


_MEMBER_KIND = Prepared(
    select(User.kind)
    .join(Member, Member.user_id == User.id)
    .where(
        Member.conversation_id == bindparam("conversation_id"),
        User.id == bindparam("user_id"),
    )
)


def kind_of_member(connection: Connection, user_id: int, conversation_id: int) -> UserKind:
    """What ``require_member`` decides for the signed-in user ``user_id``, and their kind, in
    one statement, for a read that needs no more of them (the history: staff see deliveries)."""
    params = {"conversation_id": conversation_id, "user_id": user_id}
    rows = _MEMBER_KIND.run(connection, params).rows
    if not rows:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return UserKind(rows[0][0])


# Read by one prepared statement, the objects made as the ORM's loading would (jobchat.db.loaded):
# every call on a conversation asks this, and the ORM's loading of the two rows cost as much as
# the rest of a send's statements together. The job's status comes along (a primary-key
# subquery), so that checking whether it is closed before a send costs no statement of its own.
_USER = Loader(User)
_CONVERSATION = Loader(Conversation, undefer=("job_status",))
_MEMBER = Loader(Member)
_CONVERSATION_AND_MEMBER = Prepared(
    select(*_CONVERSATION.columns, *_MEMBER.columns)
    .select_from(Conversation)
    .join(
        Member,
        and_(Member.conversation_id == Conversation.id, Member.user_id == bindparam("user_id")),
    )
    .where(Conversation.id == bindparam("conversation_id"))
)


def access_conversation(
    session: Session, user: User, conversation_id: int
) -> tuple[Conversation, Member]:
    session.flush()  # as a query through the session would (free when nothing is pending)
    params = {"user_id": user.id, "conversation_id": conversation_id}
    rows = _CONVERSATION_AND_MEMBER.run(session.connection(), params).rows
    if not rows:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return _conversation_and_member(session, rows[0], 0)


def _conversation_and_member(
    session: Session, row: Sequence[Any], at: int
) -> tuple[Conversation, Member]:
    """The conversation and the member row whose columns start at ``at`` of ``row``."""
    member_at = at + _CONVERSATION.width
    return (
        _CONVERSATION.join(session, row[at:member_at]),
        _MEMBER.join(session, row[member_at:]),
    )


# The same, with the caller's own row: a send loads the three at once (one statement where
# loading the signed-in user first took a second).
_CALLER_IN_CONVERSATION = Prepared(
    select(*_USER.columns, *_CONVERSATION.columns, *_MEMBER.columns)
    .select_from(User)
    .join(Member, Member.user_id == User.id)
    .join(Conversation, Conversation.id == Member.conversation_id)
    .where(User.id == bindparam("user_id"), Conversation.id == bindparam("conversation_id"))
)


def caller_in_conversation(
    session: Session, user_id: int, conversation_id: int
) -> tuple[User, Conversation, Member]:
    """The signed-in user ``user_id`` and what ``access_conversation`` answers for them."""
    session.flush()
    params = {"user_id": user_id, "conversation_id": conversation_id}
    rows = _CALLER_IN_CONVERSATION.run(session.connection(), params).rows
    if not rows:
        # Not a member (or no such conversation). A caller whose row is gone fails here as it
        # would have failed loading it.
        session.get_one(User, user_id)
        raise NotFound(CONVERSATION_NOT_FOUND)
    row = rows[0]
    user = _USER.join(session, row[: _USER.width])
    return (user, *_conversation_and_member(session, row, _USER.width))


def access_message(
    session: Session, user: User, message_id: int
) -> tuple[Message, Conversation, Member]:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    try:
        conv, member = access_conversation(session, user, message.conversation_id)
    except NotFound:
        raise NotFound(MESSAGE_NOT_FOUND) from None
    return message, conv, member


def access_attachment(session: Session, user: User, attachment_id: int) -> Attachment:
    """An attachment the user may fetch: a member of its conversation now, once a message took
    it (before that, its uploader alone). Removed files, and those of a message deleted for
    everyone, are not found; nor, for the one who hid it, those of a message deleted "for me"."""
    attachment = session.get(Attachment, attachment_id)
    if (
        attachment is None
        or attachment.removed_at is not None
        or not is_member(session, user, attachment.conversation_id)
    ):
        raise NotFound(ATTACHMENT_NOT_FOUND)
    if attachment.message_id is None:
        if attachment.uploader_id != user.id:
            raise NotFound(ATTACHMENT_NOT_FOUND)
    elif (
        session.get_one(Message, attachment.message_id).deleted_at is not None
        # Deleted "for me": gone from this user's history and search, so from here too.
        or session.get(HiddenMessage, (attachment.message_id, user.id)) is not None
    ):
        raise NotFound(ATTACHMENT_NOT_FOUND)
    return attachment


def _closed(job: Job) -> bool:
    return job.status == JobStatus.closed


def about_closed_job(conv: Conversation) -> bool:
    """Whether ``conv`` is about a job that is closed (readable, but nobody posts in it)."""
    return conv.job_id is not None and conv.job_status == JobStatus.closed


def _job_closed() -> Conflict:
    return Conflict(
        "This job is closed: its conversations can be read, but take no new messages.",
        code="job_closed",
    )


def post_refusal(user: User, conv: Conversation) -> Conflict | None:
    """Why ``user`` may not post into ``conv`` now (None: they may). Nobody posts about a
    closed job (the job kinds, and those about its applications); into an ended conversation
    only staff write (and so reopen it)."""
    if about_closed_job(conv):
        return _job_closed()
    if conv.status == Status.ended and not user.is_staff:
        return Conflict(
            "This conversation has been ended; you can no longer reply.",
            code="conversation_ended",
        )
    return None


def may_post(user: User, conv: Conversation) -> bool:
    return post_refusal(user, conv) is None


def check_post(user: User, conv: Conversation) -> None:
    refusal = post_refusal(user, conv)
    if refusal is not None:
        raise refusal


def is_own_email_address(user: User, address: str | None) -> bool:
    """Whether a reply by email really comes from this member: from the address we know."""
    if not address or not user.email:
        return False
    return address.strip().lower() == user.email.strip().lower()


def may_end(user: User, conv: Conversation) -> bool:
    try:
        check_end(user, conv)
    except Forbidden:
        return False
    return True


def check_end(user: User, conv: Conversation) -> None:
    if not user.is_staff:
        raise Forbidden("Only staff can end a conversation.", code="cannot_end")
    if Kind(conv.kind) not in ONE_CANDIDATE_KINDS:
        raise Forbidden(
            "Only conversations with exactly one candidate can be ended.", code="cannot_end"
        )


def check_delete_for_everyone(user: User, message: Message) -> None:
    if message.author_id != user.id:
        raise Forbidden(
            "Only the author of a message can delete it for everyone.", code="not_author"
        )


def check_active(user: User) -> None:
    """Nothing is issued to a deactivated person (the ATS reactivates them with a PUT)."""
    if not user.is_active:
        raise Conflict(
            f"This {user.kind} is deactivated; send them again with PUT to reactivate them.",
            code="user_deactivated",
        )


def check_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden("This is for staff users.", code="staff_only")


# --- what the candidate pages show -------------------------------------------------------------

CANDIDATE_NOT_FOUND = "There is no candidate with that id."


def access_candidate(session: Session, user: User, ext_id: str) -> User:
    """The candidate with this external id, if ``user`` may see them; 404 for one that does not
    exist and for one they may not see alike."""
    candidate = user_by_ext(session, UserKind.candidate, ext_id)
    if candidate is None or not can_see_candidate(session, user, candidate):
        raise NotFound(CANDIDATE_NOT_FOUND)
    return candidate


def may_start_about(session: Session, user: User, kind: Kind, about: Application | User) -> bool:
    """Whether ``user`` may start the conversation of ``kind`` about an application they can see
    (kinds case, application, agency) or a candidate (candidate_partner): the rule
    ``access_start`` applies, without its look-ups, for pages that ask it of many rows. (Whoever
    is a member of the conversation already may reach it anyway.)"""
    if isinstance(about, Application):
        if kind not in (Kind.case, Kind.application, Kind.agency):
            raise ValueError(f"not a kind about one application: {kind}")
        if _closed(about.job):
            return False  # nothing new starts about a closed job
        if kind is Kind.agency and about.agency_user is None:
            return False
        context = Context(
            kind,
            job=about.job,
            candidate=about.candidate,
            application=about,
            agency_user=about.agency_user if kind is Kind.agency else None,
        )
        if kind is Kind.case and not _has_case_partner(context):
            return False
    else:
        if kind is not Kind.candidate_partner:
            raise ValueError(f"not a kind about a candidate: {kind}")
        if about.source_partner is None:
            return False
        context = Context(kind, candidate=about, partner=about.source_partner)
    return _may_start(session, user, context)


# --- the real-time stream -----------------------------------------------------------------------

# Events about one member's own state: their read marker, a message they deleted for themselves.
_OWN_EVENTS = frozenset({EventType.conversation_read, EventType.message_deleted})


def may_receive(event_type: str, concerns_user_id: int | None, viewer_id: int) -> bool:
    """Whether a member of an event's conversation receives it.

    Membership itself is the stream's to follow (it changes with the stream's own member
    events); on top of it, other members' private events stay private.
    """
    if event_type in _OWN_EVENTS and concerns_user_id is not None:
        return concerns_user_id == viewer_id
    return True

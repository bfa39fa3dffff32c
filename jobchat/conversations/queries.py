"""Reading conversations: the inbox, the badge and the candidate manager."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    union,
)
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select, Subquery

from jobchat.conversations.models import (
    ONE_CANDIDATE_KINDS,
    Conversation,
    Kind,
    Member,
    Status,
)
from jobchat.conversations.schemas import CandidateOut
from jobchat.db.base import UTCDateTime
from jobchat.db.reading import Reading
from jobchat.directory.models import Application, Job, JobTeam, Organization, Role, User, UserKind
from jobchat.directory.queries import application_by_ext, job_by_ext, user_by_ext
from jobchat.errors import Invalid
from jobchat.inputs import MAX_ID, storable

InboxFilter = Literal["all", "unread", "messaged", "ended"]
# The conversations an agency user has about a candidate (DESIGN.md: agency messaging).
AGENCY_KINDS = (Kind.agency, Kind.agency_private)


@dataclass(frozen=True)
class InboxQuery:
    filter: InboxFilter = "all"
    kind: Kind | None = None
    job: str | None = None
    candidate: str | None = None
    application: str | None = None
    q: str | None = None


def like_pattern(q: str) -> str:
    """A case-insensitive LIKE pattern matching ``q`` anywhere, its wildcards taken literally."""
    return "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# --- cursors -------------------------------------------------------------------------------------


def _encode_cursor(*parts: str) -> str:
    """An opaque cursor: the sort key of the last row of a page."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


_BAD_CURSOR = Invalid({"cursor": "is not a cursor this server gave out"})


def _decode_cursor(cursor: str) -> tuple[str, int]:
    """(sort key, id) from a cursor; anything this server would not have made is a 422."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key, id_raw = parts
        row_id = int(id_raw)
        if not (isinstance(key, str) and isinstance(id_raw, str) and 1 <= row_id <= MAX_ID):
            raise ValueError(cursor)
        return storable(key), row_id
    except (binascii.Error, UnicodeError, ValueError, TypeError):
        raise _BAD_CURSOR from None


def _decode_time(raw: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw)
        if at.tzinfo is None:
            raise ValueError(raw)
        return at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _BAD_CURSOR from None


# --- the inbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxShape:
    """Which of the inbox's conditions a request uses: the statement depends on this alone (the
    values are bound parameters), so it is built once per shape, not once per request."""

    filter: InboxFilter
    kind: bool
    job: bool
    candidate: bool
    application: bool
    q: bool
    cursor: bool


def inbox(
    session: Session, user: User, query: InboxQuery, *, limit: int, cursor: str | None
) -> tuple[list[tuple[Conversation, Member]], str | None]:
    """The user's conversations, latest activity first: a range scan of ``ix_members_inbox``."""
    shape, params = inbox_params(
        Reading.within(session), user.id, query, limit=limit, cursor=cursor
    )
    rows = [(c, m) for c, m in session.execute(_inbox_entities(shape), params)]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1][1]
        next_cursor = inbox_cursor(last.last_activity_at, last.conversation_id)
    return rows, next_cursor


def inbox_cursor(last_activity_at: datetime, conversation_id: int) -> str:
    """The cursor of the page after the row with this sort key."""
    return _encode_cursor(last_activity_at.isoformat(), str(conversation_id))


def inbox_params(
    reading: Reading, user_id: int, query: InboxQuery, *, limit: int, cursor: str | None
) -> tuple[InboxShape, dict[str, Any]]:
    """The shape of ``inbox_statement`` a request for user ``user_id`` needs, and its
    parameters' values (one row more than ``limit``, to tell whether a page follows). A filter
    by a job, candidate or application is looked up on ``reading``'s session (only then
    opened)."""
    params: dict[str, Any] = {"inbox_user": user_id, "inbox_limit": limit + 1}
    if query.kind is not None:
        params["inbox_kind"] = str(query.kind)
    if query.job is not None:
        job = job_by_ext(reading.session, query.job)
        params["inbox_job"] = job.id if job else -1
    if query.candidate is not None:
        cand = user_by_ext(reading.session, UserKind.candidate, query.candidate)
        params["inbox_candidate"] = cand.id if cand else -1
    if query.application is not None:
        app = application_by_ext(reading.session, query.application)
        params["inbox_application"] = app.id if app else -1
    if query.q:
        params["inbox_pattern"] = like_pattern(query.q)
    if cursor is not None:
        at_raw, conv_id = _decode_cursor(cursor)
        params["inbox_at"] = _decode_time(at_raw)
        params["inbox_conv"] = conv_id
    shape = InboxShape(
        filter=query.filter,
        kind=query.kind is not None,
        job=query.job is not None,
        candidate=query.candidate is not None,
        application=query.application is not None,
        q=bool(query.q),
        cursor=cursor is not None,
    )
    return shape, params


@functools.cache
def inbox_statement(shape: InboxShape) -> Select[Any]:
    """The inbox's rows, filtered, sorted and bounded by the cursor, from ``members JOIN
    conversations`` and with no columns yet: the caller adds what it reads (ORM entities, or a
    page's plain columns). Its parameters come from ``inbox_params``."""
    stmt = (
        select()
        .select_from(Member)
        .join(Conversation, Conversation.id == Member.conversation_id)
        .where(Member.user_id == bindparam("inbox_user"))
        .order_by(Member.last_activity_at.desc(), Member.conversation_id.desc())
        .limit(bindparam("inbox_limit", type_=Integer()))
    )
    if shape.filter == "unread":
        stmt = stmt.where(Member.unread_count > 0)
    elif shape.filter == "messaged":
        stmt = stmt.where(Conversation.last_message_id.is_not(None))
    elif shape.filter == "ended":
        stmt = stmt.where(Conversation.status == Status.ended)
    if shape.kind:
        stmt = stmt.where(Conversation.kind == bindparam("inbox_kind"))
    if shape.job:
        stmt = stmt.where(Conversation.job_id == bindparam("inbox_job"))
    if shape.candidate:
        stmt = stmt.where(Conversation.candidate_id == bindparam("inbox_candidate"))
    if shape.application:
        stmt = stmt.where(Conversation.application_id == bindparam("inbox_application"))
    if shape.q:
        stmt = stmt.where(_matches(bindparam("inbox_pattern", type_=String())))
    if shape.cursor:
        # A row-value comparison, so both databases use it as a bound of the index scan.
        stmt = stmt.where(
            tuple_(Member.last_activity_at, Member.conversation_id)
            < tuple_(
                bindparam("inbox_at", type_=UTCDateTime()),
                bindparam("inbox_conv", type_=Integer()),
            )
        )
    return stmt


@functools.cache
def _inbox_entities(shape: InboxShape) -> Select[Conversation, Member]:
    return inbox_statement(shape).add_columns(Conversation, Member)


def _matches(pattern: ColumnElement[str]) -> ColumnElement[bool]:
    """Search by name or job: the job's title, the partner organisation's name, or the name of
    anyone in the conversation (``pattern`` is a ``like_pattern``)."""
    member_named = (
        select(Member.conversation_id)
        .join(User, User.id == Member.user_id)
        .where(func.lower(User.name).like(pattern, escape="\\"))
    )
    job_titled = select(Job.id).where(func.lower(Job.title).like(pattern, escape="\\"))
    partner_named = select(Organization.id).where(
        func.lower(Organization.name).like(pattern, escape="\\")
    )
    return or_(
        Conversation.id.in_(member_named),
        Conversation.job_id.in_(job_titled),
        Conversation.partner_id.in_(partner_named),
    )


# --- the badge -----------------------------------------------------------------------------------


def unread_totals(session: Session, user: User) -> tuple[int, int]:
    """(conversations with something unread, unread messages): kept on the user's row by the
    actions (jobchat.conversations.unread), so the badge reads it instead of summing."""
    return user.unread_conversations, user.unread_messages


# --- the candidate manager -----------------------------------------------------------------------

CandidateFilter = Literal["unread", "messaged"]


def messageable_candidate_ids(user: User) -> object:
    """Candidates a staff user may message: those on jobs they work, and their partner's own."""
    org = user.organization_id if user.organization_id is not None else -1
    on_team = exists().where(JobTeam.job_id == Job.id, JobTeam.user_id == user.id)
    has_team = exists().where(JobTeam.job_id == Job.id)
    jobs = select(Job.id).where(
        Job.employer_id == org,
        or_(literal(user.role == Role.admin), ~has_team, on_team),
    )
    return union(
        select(Application.candidate_id.label("id")).where(Application.job_id.in_(jobs)),
        select(User.id.label("id")).where(User.source_partner_id == org),
    )


def history_stats(user: User, kinds: Iterable[Kind] = ONE_CANDIDATE_KINDS) -> Subquery:
    """Per candidate, ``has`` (1 when a conversation of one of ``kinds`` that ``user`` is in
    with them holds a message, else 0) and ``unread`` (the user's unread messages in those).

    The one notion of "has messages" with a candidate: the candidate manager's speech bubble
    and filters, the API's ``has_messages`` and the profile's Messages tab all read it."""
    return (
        select(
            Conversation.candidate_id.label("candidate_id"),
            func.max(case((Conversation.last_message_id.is_not(None), 1), else_=0)).label("has"),
            func.sum(Member.unread_count).label("unread"),
        )
        .join(Member, and_(Member.conversation_id == Conversation.id, Member.user_id == user.id))
        .where(Conversation.kind.in_([str(k) for k in kinds]))
        .group_by(Conversation.candidate_id)
        .subquery()
    )


def candidate_history(session: Session, user: User, candidate: User) -> tuple[bool, int]:
    """(has messages, unread) for one candidate, by ``history_stats``."""
    stats = history_stats(user)
    row = session.execute(
        select(stats.c.has, stats.c.unread).where(stats.c.candidate_id == candidate.id)
    ).one_or_none()
    return (bool(row[0]), int(row[1] or 0)) if row is not None else (False, 0)


def submitted_candidate_ids(user: User) -> object:
    """The candidates an agency user submitted (the agency user of one of their applications)."""
    return select(Application.candidate_id.label("id")).where(Application.agency_user_id == user.id)


def candidate_manager(
    session: Session,
    user: User,
    *,
    messaging: CandidateFilter | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[CandidateOut], str | None]:
    """The candidates ``user`` may message, by name, with ``history_stats``."""
    return _candidate_page(
        session,
        user,
        messageable_candidate_ids(user),
        history_stats(user),
        messaging=messaging,
        q=q,
        limit=limit,
        cursor=cursor,
    )


def submitted_candidates(
    session: Session,
    user: User,
    *,
    messaging: CandidateFilter | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[CandidateOut], str | None]:
    """An agency user's candidate manager: the candidates they submitted, by name, with the
    history of their agency threads about them (the only conversations they have with them)."""
    return _candidate_page(
        session,
        user,
        submitted_candidate_ids(user),
        history_stats(user, AGENCY_KINDS),
        messaging=messaging,
        q=q,
        limit=limit,
        cursor=cursor,
    )


def _candidate_page(
    session: Session,
    user: User,
    ids: object,
    stats: Subquery,
    *,
    messaging: CandidateFilter | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[CandidateOut], str | None]:
    visible = ids.subquery()  # type: ignore[attr-defined]
    stmt = (
        select(User, stats.c.has, stats.c.unread)
        .outerjoin(stats, stats.c.candidate_id == User.id)
        .where(User.id.in_(select(visible.c.id)))
        .options(selectinload(User.source_partner))
        .order_by(User.name, User.id)
        .limit(limit + 1)
    )
    if messaging == "unread":
        stmt = stmt.where(stats.c.unread > 0)
    elif messaging == "messaged":
        stmt = stmt.where(stats.c.has == 1)
    if q:
        pattern = like_pattern(q)
        stmt = stmt.where(
            or_(
                func.lower(User.name).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
            )
        )
    if cursor is not None:
        name, last_id = _decode_cursor(cursor)
        stmt = stmt.where(or_(User.name > name, and_(User.name == name, User.id > last_id)))
    rows = list(session.execute(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        CandidateOut(
            id=cand.ext_id,
            name=cand.name,
            email=cand.email,
            phone=cand.phone,
            sms_consent=cand.sms_consent,
            source_partner=cand.source_partner.ext_id if cand.source_partner else None,
            has_messages=bool(has),
            unread_count=int(unread or 0),
        )
        for cand, has, unread in rows
    ]
    next_cursor = None
    if more and rows:
        last_cand = rows[-1][0]
        next_cursor = _encode_cursor(last_cand.name, str(last_cand.id))
    return items, next_cursor


# --- members -------------------------------------------------------------------------------------


def conversation_ids_of(session: Session, user_id: int) -> set[int]:
    return set(session.scalars(select(Member.conversation_id).where(Member.user_id == user_id)))


def member_refs(session: Session, conversation_id: int) -> list[tuple[int, str]]:
    """(id, external id) of each member."""
    rows = session.execute(
        select(User.id, User.ext_id)
        .join(Member, Member.user_id == User.id)
        .where(Member.conversation_id == conversation_id)
    )
    return [(user_id, ext_id) for user_id, ext_id in rows]


def member_people(session: Session, conversation_id: int) -> list[tuple[User, str | None]]:
    """Each member with their organisation's name (None for candidates), by name."""
    rows = session.execute(
        select(User, Organization.name)
        .join(Member, Member.user_id == User.id)
        .outerjoin(Organization, Organization.id == User.organization_id)
        .where(Member.conversation_id == conversation_id)
        .order_by(User.name, User.id)
    )
    return [(user, org) for user, org in rows]


def memberships_in(
    session: Session, user: User, conversation_ids: Iterable[int]
) -> list[tuple[Conversation, Member]]:
    """Of these conversations, those the user is a member of, with their membership (one
    they left is not among them)."""
    ids = set(conversation_ids)
    if not ids:
        return []
    rows = session.execute(
        select(Conversation, Member)
        .join(Member, Member.conversation_id == Conversation.id)
        .where(Conversation.id.in_(ids), Member.user_id == user.id)
        .order_by(Conversation.id)
    ).all()
    return [(c, m) for c, m in rows]

"""Rendering conversations as the API shows them, a page at a time.

A page of 50 is rendered in three statements whatever its size: one row per conversation with
everything its title, references and last message need (outer joins on primary keys), who is in
which conversation, and each of those people once, all as plain columns. The inbox route's page
(``render_inbox``) picks its rows in the first of them. Loading ORM objects for the same page cost
about four times as much (see bench/), and the inbox is the hottest read there is.

Each conversation is rendered as plain data, exactly what ``ConversationOut`` serialises to (its
fields in its order, the datetimes aware UTC): the inbox route writes that as JSON directly
(``page_json``), without building and serialising a pydantic model per conversation, member and
message (about a third of the route's CPU); the other callers get ``ConversationOut`` models made
from it. tests/test_read_paths.py holds the two byte for byte to the ORM path's JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Select

from jobchat import plain_json
from jobchat.conversations.models import Conversation, Kind, Member, Status
from jobchat.conversations.queries import (
    InboxQuery,
    InboxShape,
    inbox_cursor,
    inbox_params,
    inbox_statement,
)
from jobchat.conversations.schemas import ConversationOut, Names
from jobchat.db.id_lists import in_ids
from jobchat.db.prepared import Prepared, connection_of
from jobchat.db.reading import Reading
from jobchat.directory.models import Application, Job, Organization, User, UserKind
from jobchat.messages.models import HiddenMessage, Message
from jobchat.messages.queries import latest_visible
from jobchat.messages.schemas import MessageOut, author_plain, shown
from jobchat.plain_json import Plain

_employer = aliased(Organization, name="employer")
_candidate = aliased(User, name="candidate")
_partner = aliased(Organization, name="partner")
_employer_user = aliased(User, name="employer_user")
_agency_user = aliased(User, name="agency_user")
_author = aliased(User, name="author")

# What a conversation's title, references and last message need, by outer joins on primary keys.
_CONTEXT_COLUMNS = (
    Conversation.id,
    Conversation.kind,
    Conversation.status,
    Conversation.created_at,
    Conversation.last_activity_at,
    Conversation.ended_at,
    Job.ext_id.label("job_ext"),
    Job.title.label("job_title"),
    _employer.name.label("employer_name"),
    _candidate.id.label("cand_id"),
    _candidate.ext_id.label("cand_ext"),
    _candidate.name.label("cand_name"),
    Application.ext_id.label("app_ext"),
    _partner.ext_id.label("partner_ext"),
    _partner.name.label("partner_name"),
    _employer_user.ext_id.label("employer_user_ext"),
    _employer_user.name.label("employer_user_name"),
    _agency_user.ext_id.label("agency_user_ext"),
    _agency_user.name.label("agency_user_name"),
    Message.id.label("msg_id"),
    Message.body.label("msg_body"),
    Message.subject.label("msg_subject"),
    Message.channel.label("msg_channel"),
    Message.created_at.label("msg_created_at"),
    Message.deleted_at.label("msg_deleted_at"),
    _author.ext_id.label("author_ext"),
    _author.name.label("author_name"),
    _author.kind.label("author_kind"),
    HiddenMessage.message_id.label("msg_hidden"),
)


def _with_context(stmt: Select[Any]) -> Select[Any]:
    """``stmt`` (whose FROM has ``conversations``) with the context's columns and outer joins."""
    return (
        stmt.add_columns(*_CONTEXT_COLUMNS)
        .outerjoin(Job, Job.id == Conversation.job_id)
        .outerjoin(_employer, _employer.id == Job.employer_id)
        .outerjoin(_candidate, _candidate.id == Conversation.candidate_id)
        .outerjoin(Application, Application.id == Conversation.application_id)
        .outerjoin(_partner, _partner.id == Conversation.partner_id)
        .outerjoin(_employer_user, _employer_user.id == Conversation.employer_user_id)
        .outerjoin(_agency_user, _agency_user.id == Conversation.agency_user_id)
        .outerjoin(Message, Message.id == Conversation.last_message_id)
        .outerjoin(_author, _author.id == Message.author_id)
        .outerjoin(
            HiddenMessage,
            (HiddenMessage.message_id == Message.id)
            & (HiddenMessage.user_id == bindparam("viewer_id")),
        )
    )


_CONTEXT = _with_context(select().select_from(Conversation)).where(
    in_ids(Conversation.id, "conv_ids")
)


class _Context(NamedTuple):
    """A row of ``_CONTEXT_COLUMNS``, by name. The statements run on the driver's cursor
    (``Prepared``): reading a column of one of SQLAlchemy's rows by name cost ten times reading
    a named tuple's, and a page reads some 2,000 of them (a third of the inbox's CPU)."""

    id: int
    kind: str
    status: str
    created_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    job_ext: str | None
    job_title: str | None
    employer_name: str | None
    cand_id: int | None
    cand_ext: str | None
    cand_name: str | None
    app_ext: str | None
    partner_ext: str | None
    partner_name: str | None
    employer_user_ext: str | None
    employer_user_name: str | None
    agency_user_ext: str | None
    agency_user_name: str | None
    msg_id: int | None
    msg_body: str | None
    msg_subject: str | None
    msg_channel: str | None
    msg_created_at: datetime | None
    msg_deleted_at: datetime | None
    author_ext: str | None
    author_name: str | None
    author_kind: str | None
    msg_hidden: int | None


assert _Context._fields == tuple(c.key for c in _CONTEXT_COLUMNS), "_Context is out of step"
_CONTEXT_WIDTH = len(_Context._fields)
_RUN_CONTEXT = Prepared(_CONTEXT)


def _contexts(connection: Connection, conv_ids: list[int], viewer_id: int) -> list[_Context]:
    rows = _RUN_CONTEXT.run(connection, {"conv_ids": conv_ids, "viewer_id": viewer_id}).rows
    return [_Context._make(row) for row in rows]


# The inbox page's own columns: the viewer's read state and sort key.
_INBOX_COLUMNS = (
    Member.conversation_id.label("conv_id"),
    Member.unread_count,
    Member.last_read_message_id,
    Member.last_activity_at,
)

# A page's members in two statements: who is in which conversation (an index-only scan of the
# members' primary key), then each person once (the same staff are in most of a page's
# conversations), in the order they are listed: candidates first, then staff, each by name (the
# database's collation), id last. Joined in one statement, PostgreSQL hashed the whole users
# table for every page.
_MEMBERSHIPS = Prepared(
    select(Member.conversation_id, Member.user_id).where(in_ids(Member.conversation_id, "conv_ids"))
)
_PEOPLE = Prepared(
    select(User.id, User.ext_id, User.name, User.kind, Organization.ext_id)
    .outerjoin(Organization, Organization.id == User.organization_id)
    .where(in_ids(User.id, "user_ids"))
    .order_by(User.kind, User.name, User.id)
)


def title(kind: Kind, names: Names, viewer_id: int) -> str:
    """A name for the conversation, from the viewer's side of it."""
    if kind in (Kind.job_partner, Kind.job_partners, Kind.job_relocation):
        if kind is Kind.job_partner:
            return f"{names.job_title} · {names.partner}"
        audience = "relocation" if kind is Kind.job_relocation else "all partners"
        return f"{names.job_title} · {audience}"
    if kind is Kind.candidate_partner:
        partner = names.partner or "source partner"
        return partner if viewer_id == names.candidate_id else f"{names.candidate} · {partner}"
    if viewer_id == names.candidate_id:
        return f"{names.job_title} · {names.employer}"
    if kind is Kind.agency:
        return f"{names.candidate} · {names.job_title} · agency"
    if kind is Kind.agency_private:
        return (
            f"{names.candidate} · {names.job_title} · private: "
            f"{names.employer_user} & {names.agency_user}"
        )
    return f"{names.candidate} · {names.job_title}"


def _last_message(reading: Reading, viewer_id: int, conv_id: int, r: _Context) -> Plain | None:
    if r.msg_id is None:
        return None
    if r.msg_hidden is not None:
        # The viewer deleted the newest message for themself: show the one before it. Rare, so
        # a query of its own rather than a costlier join for every row of every page.
        earlier = latest_visible(reading.session, viewer_id, conv_id)
        return MessageOut.of(earlier).model_dump() if earlier is not None else None
    assert r.msg_body is not None
    deleted, body, subject = shown(r.msg_body, r.msg_subject, r.msg_deleted_at)
    # MessageOut's fields, in its order.
    return {
        "id": r.msg_id,
        "conversation": conv_id,
        "author": author_plain(r.author_ext, r.author_name, r.author_kind),
        "body": body,
        "subject": subject,
        "channel": r.msg_channel,
        "created_at": r.msg_created_at,
        "deleted": deleted,
        "deliveries": None,
        "attachments": [],
    }


def render_conversations(
    session: Session, viewer: User, rows: Sequence[tuple[Conversation, Member]]
) -> list[ConversationOut]:
    """Render the viewer's page of (conversation, their member row) pairs, in order."""
    if not rows:
        return []
    ids = [conv.id for conv, _ in rows]
    reading = Reading.within(session)
    context = {r.id: r for r in _contexts(reading.connection, ids, viewer.id)}
    members = _members(reading.connection, ids)
    return [
        _model(
            _render(
                reading,
                viewer.id,
                context[conv.id],
                members[conv.id],
                unread_count=member.unread_count,
                last_read_message_id=member.last_read_message_id,
            )
        )
        for conv, member in rows
    ]


def _model(rendered: tuple[Plain, Names]) -> ConversationOut:
    plain, names = rendered
    out = ConversationOut.model_validate(plain)
    out._names = names
    return out


@dataclass(frozen=True)
class InboxPage:
    """An inbox page as plain data (``items``: ConversationOut's JSON each), with the names
    behind each title and the next page's cursor."""

    items: list[Plain]
    names: list[Names]
    next_cursor: str | None


def render_inbox(
    reading: Reading, viewer_id: int, query: InboxQuery, *, limit: int, cursor: str | None
) -> InboxPage:
    """User ``viewer_id``'s inbox page as the API shows it, and the next page's cursor. The
    same rows as ``inbox()`` then ``render_conversations()``, in two statements instead of
    three: the page and its context in one (the range scan of ``ix_members_inbox`` with outer
    joins on primary keys, stopping at the limit), its members in the other; plain columns, no
    ORM objects. The viewer's own row is not read: only their id is needed."""
    shape, params = inbox_params(reading, viewer_id, query, limit=limit, cursor=cursor)
    params["viewer_id"] = viewer_id
    rows = _inbox_page(shape).run(reading.connection, params).rows
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return InboxPage([], [], None)
    # Each row: the context's columns, then the viewer's unread count, last read message and
    # last activity (the sort key).
    contexts = [_Context._make(row[:_CONTEXT_WIDTH]) for row in rows]
    members = _members(reading.connection, [r.id for r in contexts])
    rendered = [
        _render(
            reading,
            viewer_id,
            r,
            members[r.id],
            unread_count=row[_CONTEXT_WIDTH],
            last_read_message_id=row[_CONTEXT_WIDTH + 1],
        )
        for r, row in zip(contexts, rows, strict=True)
    ]
    last_activity_at = rows[-1][_CONTEXT_WIDTH + 2]
    return InboxPage(
        items=[plain for plain, _ in rendered],
        names=[names for _, names in rendered],
        next_cursor=inbox_cursor(last_activity_at, contexts[-1].id) if more else None,
    )


def page_json(page: InboxPage) -> bytes:
    """The page as ``ConversationPage``'s JSON, byte for byte."""
    return plain_json.page_json(page.items, page.next_cursor)


@functools.cache
def _inbox_page(shape: InboxShape) -> Prepared:
    # The page is picked first, in a subquery with its LIMIT, and only its rows are joined to
    # their context: joined in one level, an index that does not give the order (the unread
    # filter's) would have every one of the user's unread conversations joined, then sorted.
    picked = inbox_statement(shape).add_columns(*_INBOX_COLUMNS).subquery("page")
    in_context = _with_context(
        select().select_from(picked).join(Conversation, Conversation.id == picked.c.conv_id)
    )
    # After the context's columns (so that a row's first ones are a _Context): the viewer's
    # read state and the sort key.
    return Prepared(
        in_context.add_columns(
            picked.c.unread_count, picked.c.last_read_message_id, picked.c.last_activity_at
        ).order_by(picked.c.last_activity_at.desc(), picked.c.conv_id.desc())
    )


def _members(conn: Connection, conv_ids: list[int]) -> dict[int, list[Plain]]:
    memberships = _MEMBERSHIPS.run(conn, {"conv_ids": conv_ids}).rows
    # Each person once, in listing order; one MemberOut's data each, shared by their
    # conversations.
    people: dict[int, tuple[int, Plain]] = {}
    if memberships:
        user_ids = list({user_id for _, user_id in memberships})
        for rank, (user_id, ext_id, name, kind, org_ext) in enumerate(
            _PEOPLE.run(conn, {"user_ids": user_ids}).rows
        ):
            # MemberOut's fields, in its order.
            person = {
                "id": ext_id,
                "name": name,
                "kind": "staff" if kind == UserKind.staff else "candidate",
                "organization": org_ext,
            }
            people[user_id] = (rank, person)
    listed: dict[int, list[tuple[int, Plain]]] = {conv_id: [] for conv_id in conv_ids}
    for conv_id, user_id in memberships:
        listed[conv_id].append(people[user_id])
    return {conv_id: [p for _, p in sorted(ms, key=_rank)] for conv_id, ms in listed.items()}


def _rank(ranked: tuple[int, Plain]) -> int:
    return ranked[0]


def _render(
    reading: Reading,
    viewer_id: int,
    r: _Context,
    members: list[Plain],
    *,
    unread_count: int,
    last_read_message_id: int,
) -> tuple[Plain, Names]:
    kind = Kind(r.kind)
    names = _names(r)
    # ConversationOut's fields, in its order.
    plain = {
        "id": r.id,
        "kind": kind,
        "title": title(kind, names, viewer_id),
        "status": Status(r.status),
        "job": r.job_ext,
        "candidate": r.cand_ext,
        "application": r.app_ext,
        "partner": r.partner_ext,
        "employer_user": r.employer_user_ext,
        "agency_user": r.agency_user_ext,
        "members": members,
        "unread_count": unread_count,
        "last_read_message_id": last_read_message_id,
        "last_message": _last_message(reading, viewer_id, r.id, r),
        "created_at": r.created_at,
        "updated_at": r.last_activity_at,
        "ended_at": r.ended_at,
    }
    return plain, names


def render_conversation(
    session: Session, viewer: User, conv: Conversation, member: Member
) -> ConversationOut:
    return render_conversations(session, viewer, [(conv, member)])[0]


def conversation_title(session: Session, viewer_id: int, conv_id: int, kind: str) -> str:
    """The title of conversation ``conv_id`` (of ``kind``) as the viewer sees it, in one
    statement: a push shows only this, and the rest of the rendering costs as much again."""
    return title(Kind(kind), conversation_names(session, viewer_id, conv_id), viewer_id)


def conversation_names(session: Session, viewer_id: int, conv_id: int) -> Names:
    """The names conversation ``conv_id``'s title is made of (its job, candidate, partner), in
    one statement: a notification names them beside the title."""
    (r,) = _contexts(connection_of(session), [conv_id], viewer_id)
    return _names(r)


def conversation_titles(session: Session, viewer_id: int, kinds: dict[int, str]) -> dict[int, str]:
    """The titles of many conversations (id -> kind) as the viewer sees them, in one statement:
    a page of search results spans up to 20 conversations."""
    if not kinds:
        return {}
    rows = _contexts(connection_of(session), list(kinds), viewer_id)
    return {r.id: title(Kind(kinds[r.id]), _names(r), viewer_id) for r in rows}


def _names(r: _Context) -> Names:
    return Names(
        job_title=r.job_title,
        employer=r.employer_name,
        candidate_id=r.cand_id,
        candidate=r.cand_name,
        partner=r.partner_name,
        employer_user=r.employer_user_name,
        agency_user=r.agency_user_name,
    )

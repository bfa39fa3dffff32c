"""Searching the messages a person may read.

Access is the history's: the caller's conversations now (their member rows: someone who left
finds nothing of it any more), never a message deleted for everyone (it has no index entry, and
is filtered out besides) or one the caller deleted for themself.

Ranking happens in Python over a window: the newest WINDOW matches in scope (by id) are scored
(``jobchat.search.ranking``) and ordered best first, then newest (created_at, then id); pages
run through that window, then through the next older one. A cursor holds the window's upper
bound and the offset in it, so a page never repeats or skips a match because of a message sent
since the first page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, TextClause, column, exists, func, select, table, text
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import ColumnClause, TableClause

from jobchat import access
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.conversations.render import conversation_title
from jobchat.directory.models import User, UserKind
from jobchat.directory.queries import job_by_ext, user_by_ext
from jobchat.errors import Invalid
from jobchat.inputs import MAX_ID
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.search.query import Query, fts5_expression, parse, tsquery_literal
from jobchat.search.ranking import matches, score, snippet

# How many matches are ranked together (the newest ones in scope); older ones rank in the next.
WINDOW = 500


@dataclass(frozen=True)
class Filters:
    conversation: int | None = None
    job: str | None = None
    candidate: str | None = None


@dataclass(frozen=True)
class Hit:
    message: Message
    conversation_id: int
    conversation_kind: Kind
    conversation_title: str
    snippet: str
    highlights: list[tuple[int, int]]


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    next_cursor: str | None


_BAD_CURSOR = Invalid({"cursor": "is not a cursor this server gave out"})


def _encode_cursor(bound: int, offset: int) -> str:
    raw = json.dumps({"b": bound, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    """(upper id bound, exclusive; offset in that window); a 422 for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeError, ValueError):
        raise _BAD_CURSOR from None
    if not isinstance(data, dict) or set(data) != {"b", "o"}:
        raise _BAD_CURSOR
    bound, offset = data["b"], data["o"]
    for value in (bound, offset):
        if type(value) is not int:  # not bool, not float
            raise _BAD_CURSOR
    if not (1 <= bound <= MAX_ID and 0 <= offset < 1_000_000):
        raise _BAD_CURSOR
    return bound, offset


_SQLITE_INDEX = table("message_search", column("rowid"), column("words"), column("stems"))
_PG_INDEX = table("message_search", column("message_id"), column("words"), column("stems"))

# Through the full-text index, a search costs about as much as the messages that match in the
# whole database: for a word in one message in ten, 100,000 of a million. Someone in 200
# conversations can read a few thousand. So when the caller's scope holds at most this many
# messages, and fewer than the query matches in the whole index (counted only that far), the
# scope is read whole and matched in Python (``jobchat.search.ranking.matches``: the same rules
# over the same token streams, so the results are the same either way).
SCAN_LIMIT = 10_000


def _index(session: Session) -> tuple[TableClause, ColumnClause[Any]]:
    if session.get_bind().dialect.name == "sqlite":
        return _SQLITE_INDEX, _SQLITE_INDEX.c.rowid
    return _PG_INDEX, _PG_INDEX.c.message_id


def _visible(user: User) -> list[ColumnElement[bool]]:
    """Messages the caller may read: not deleted for everyone, not deleted by them for them
    (their membership is joined)."""
    return [
        Message.deleted_at.is_(None),
        ~exists().where(HiddenMessage.message_id == Message.id, HiddenMessage.user_id == user.id),
    ]


def _membership(user: User) -> ColumnElement[bool]:
    return (Member.conversation_id == Message.conversation_id) & (Member.user_id == user.id)


def _scope_size(
    session: Session, user: User, scope: list[ColumnElement[bool]], before: int | None
) -> int:
    """How many messages the caller's scope holds (below ``before``), counted up to
    SCAN_LIMIT + 1 on the indexes alone (members, then messages by conversation and id)."""
    stmt = select(Message.id).join(Member, _membership(user)).where(*scope).limit(SCAN_LIMIT + 1)
    if before is not None:
        stmt = stmt.where(Message.id < before)
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _match_condition(session: Session, query: Query) -> TextClause:
    if session.get_bind().dialect.name == "sqlite":
        return text("message_search MATCH :expression").bindparams(
            expression=fts5_expression(query)
        )
    return text("message_search.document @@ CAST(:tsquery AS tsquery)").bindparams(
        tsquery=tsquery_literal(query)
    )


def _index_matches_more_than(session: Session, query: Query, count: int) -> bool:
    """Whether more than ``count`` messages in the whole index match (counted no further)."""
    index, key = _index(session)
    first = select(key).select_from(index).where(_match_condition(session, query)).limit(count + 1)
    found = session.scalar(select(func.count()).select_from(first.subquery())) or 0
    return int(found) > count


# "scan" or "index" to choose for every search (the tests run each way; the benchmark compares).
FORCE_PLAN: Literal["scan", "index"] | None = None


def _plan(
    session: Session,
    user: User,
    query: Query,
    scope: list[ColumnElement[bool]],
    before: int | None,
) -> Literal["scan", "index"]:
    if FORCE_PLAN is not None:
        return FORCE_PLAN
    size = _scope_size(session, user, scope, before)
    if size <= SCAN_LIMIT and _index_matches_more_than(session, query, size):
        return "scan"
    return "index"


def _matches(
    session: Session,
    user: User,
    query: Query,
    scope: list[ColumnElement[bool]],
    *,
    before: int | None,
    limit: int,
) -> list[tuple[int, datetime, str, str]]:
    """The newest ``limit`` matches in scope (id below ``before``): id, created_at, words,
    stems. Found the cheaper way: the caller's scope read whole when it is small and the
    query's matches in the whole index are more; through the index otherwise."""
    index, key = _index(session)
    if _plan(session, user, query, scope, before) == "scan":
        stmt = (
            select(Message.id, index.c.words, index.c.stems)
            .select_from(Member)
            .join(Message, _membership(user))
            .join(index, key == Message.id)
            .where(Member.user_id == user.id, *_visible(user), *scope)
        )
        if before is not None:
            stmt = stmt.where(Message.id < before)
        # On the connection: thousands of plain rows, without the ORM's handling of each.
        rows = session.connection().execute(stmt)
        found = sorted((r for r in rows if matches(query, r[1], r[2])), reverse=True)[:limit]
        created = dict(
            session.execute(
                select(Message.id, Message.created_at).where(Message.id.in_([r[0] for r in found]))
            ).all()
        )
        return [(r[0], created[r[0]], r[1], r[2]) for r in found]
    stmt = (
        select(Message.id, Message.created_at, index.c.words, index.c.stems)
        .select_from(index)
        .join(Message, Message.id == key)
        .join(Member, _membership(user))
        .where(_match_condition(session, query), *_visible(user), *scope)
        .order_by(key.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(key < before)
    return [(r[0], r[1], r[2], r[3]) for r in session.execute(stmt)]


def _scope(session: Session, user: User, filters: Filters) -> list[ColumnElement[bool]]:
    """The filters as conditions; a conversation the caller is not in is a 404 (as for its
    history), an unknown job or candidate matches nothing (as in the inbox)."""
    scope: list[ColumnElement[bool]] = []
    if filters.conversation is not None:
        access.access_conversation(session, user, filters.conversation)
        scope.append(Message.conversation_id == filters.conversation)
    if filters.job is not None or filters.candidate is not None:
        about = select(Conversation.id)
        if filters.job is not None:
            job = job_by_ext(session, filters.job)
            about = about.where(Conversation.job_id == (job.id if job else -1))
        if filters.candidate is not None:
            cand = user_by_ext(session, UserKind.candidate, filters.candidate)
            about = about.where(Conversation.candidate_id == (cand.id if cand else -1))
        scope.append(Message.conversation_id.in_(about))
    return scope


def search(
    session: Session,
    user: User,
    q: str,
    filters: Filters,
    limit: int,
    cursor: str | None,
    *,
    window: int | None = None,
) -> SearchPage:
    """A page of the caller's messages matching ``q``: best first, then newest; ``window``
    defaults to WINDOW (read at each call: a test shrinks it)."""
    window = WINDOW if window is None else window
    query = parse(q)
    bound, offset = _decode_cursor(cursor) if cursor is not None else (None, 0)
    scope = _scope(session, user, filters)
    if query.empty:
        return SearchPage([], None)
    rows = _matches(session, user, query, scope, before=bound, limit=window + 1)
    older = len(rows) > window
    rows = rows[:window]
    if not rows:
        return SearchPage([], None)
    scored = [(score(query, words, stems), created, mid) for mid, created, words, stems in rows]
    ranked = sorted(scored, reverse=True)
    page = ranked[offset : offset + limit]
    if offset + limit < len(ranked):
        next_cursor = _encode_cursor(bound or rows[0][0] + 1, offset + limit)
    elif older:
        next_cursor = _encode_cursor(rows[-1][0], 0)
    else:
        next_cursor = None
    return SearchPage(_hits(session, user, query, [mid for _, _, mid in page]), next_cursor)


def _hits(session: Session, user: User, query: Query, ids: list[int]) -> list[Hit]:
    if not ids:
        return []
    messages = {
        m.id: m
        for m in session.scalars(
            select(Message)
            .where(Message.id.in_(ids))
            .options(
                selectinload(Message.author),
                selectinload(Message.deliveries).selectinload(Delivery.recipient),
                selectinload(Message.attachments),
            )
        )
    }
    in_page = {m.conversation_id for m in messages.values()}
    kinds: dict[int, str] = {}
    for cid, kind in session.execute(
        select(Conversation.id, Conversation.kind).where(Conversation.id.in_(in_page))
    ):
        kinds[cid] = kind
    titles = {cid: conversation_title(session, user.id, cid, kind) for cid, kind in kinds.items()}
    hits = []
    for mid in ids:
        message = messages[mid]
        text_, ranges = snippet(query, message.subject, message.body)
        cid = message.conversation_id
        hits.append(
            Hit(
                message=message,
                conversation_id=cid,
                conversation_kind=Kind(kinds[cid]),
                conversation_title=titles[cid],
                snippet=text_,
                highlights=ranges,
            )
        )
    return hits

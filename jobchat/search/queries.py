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

from sqlalchemy import ColumnElement, Select, column, exists, literal_column, select, table, text
from sqlalchemy.orm import Session, selectinload

from jobchat import access
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.conversations.render import conversation_titles
from jobchat.directory.models import User, UserKind
from jobchat.directory.queries import job_by_ext, user_by_ext
from jobchat.errors import Invalid
from jobchat.inputs import MAX_ID
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.search.query import Query, fts5_expression, parse, tsquery_literal
from jobchat.search.ranking import score, snippet

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


def _visible(user: User) -> list[ColumnElement[bool]]:
    """Messages the caller may read: not deleted for everyone, not deleted by them for them."""
    return [
        Message.deleted_at.is_(None),
        ~exists().where(HiddenMessage.message_id == Message.id, HiddenMessage.user_id == user.id),
    ]


def _mine(user: User) -> Select[int]:
    """The ids of the messages in the caller's conversations (members, then messages by
    conversation and id: both on indexes alone)."""
    return (
        select(Message.id)
        .join(Member, Member.conversation_id == Message.conversation_id)
        .where(Member.user_id == user.id)
    )


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
    stems. One statement: the database keeps to the caller's messages and to the query's
    matches, and only matches come back (to be ranked in Python).

    SQLite: FTS5 walks the query's matches in the whole index, newest first (rowid order), and
    keeps those whose rowid is among the caller's message ids, built once into an in-memory
    set. The unary "+" stops SQLite offering the IN to FTS5 as rowid lookups: one index probe
    per message in scope, slower than the walk for every query measured (bench/bench_search.py).

    PostgreSQL: the planner chooses; for staff in 200 conversations it loops over the scope's
    message ids (members, then ix_messages_history) and tests each one's document (primary key
    lookup, then @@). Counting the matches in the whole index first, to choose between plans,
    cost more than either plan."""
    if session.get_bind().dialect.name == "sqlite":
        index, key = _SQLITE_INDEX, _SQLITE_INDEX.c.rowid
        in_scope = literal_column("+message_search.rowid").in_(_mine(user))
        match = text("message_search MATCH :expression").bindparams(
            expression=fts5_expression(query)
        )
        newest_first = key.desc()
    else:
        index, key = _PG_INDEX, _PG_INDEX.c.message_id
        in_scope = key.in_(_mine(user))
        match = text("message_search.document @@ CAST(:tsquery AS tsquery)").bindparams(
            tsquery=tsquery_literal(query)
        )
        newest_first = Message.id.desc()
    stmt = (
        select(Message.id, Message.created_at, index.c.words, index.c.stems)
        .select_from(index)
        .join(Message, Message.id == key)
        .where(match, in_scope, *_visible(user), *scope)
        .order_by(newest_first)
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Message.id < before)
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
    titles = conversation_titles(session, user.id, kinds)
    hits = []
    for mid in ids:
        message = messages[mid]
        names = [a.filename for a in message.attachments if a.removed_at is None]
        text_, ranges = snippet(query, message.subject, message.body, names)
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

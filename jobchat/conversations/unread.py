"""The badge: each user's unread totals, kept on their ``users`` row.

``users.unread_conversations`` and ``users.unread_messages`` always equal, for that user,
``count(*)`` and ``sum(unread_count)`` over their member rows with ``unread_count > 0``. Every
action that changes a member's unread count (a send, a read, a delete for me or for everyone, a
member removed with something unread) shifts the totals in the same transaction, with relative
updates, through ``shift_totals``, so neither the badge nor the events that carry it sum anything.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from jobchat.conversations.models import Member
from jobchat.db.id_lists import in_ids
from jobchat.db.prepared import Prepared
from jobchat.directory.models import User

# (conversations with something unread, unread messages)
Totals = tuple[int, int]

_USERS = cast(Table, User.__table__)


def change(old: int, new: int) -> Totals:
    """What a member's unread count going from ``old`` to ``new`` does to their user's totals."""
    return int(new > 0) - int(old > 0), new - old


def shift_totals(
    session: Session, deltas: Mapping[int, Totals], *, locked: bool = False
) -> dict[int, Totals]:
    """Add each user's (conversations, messages) delta to their totals, in one statement; returns
    the new totals of every user named (also of those whose delta is zero). ``locked``: the
    caller has already locked those users' rows in this transaction, by ``locking_in_order``."""
    if not deltas:
        return {}
    ids = sorted(deltas)
    groups: dict[Totals, list[int]] = {}
    for user_id in ids:
        if deltas[user_id] != (0, 0):
            groups.setdefault(deltas[user_id], []).append(user_id)
    params: dict[str, Any] = {"ids": ids}
    if not groups:
        statement = _READ
    else:
        statement = _shift_statement(len(groups))
        for i, ((convs, msgs), user_ids) in enumerate(groups.items()):
            params |= {f"g{i}": user_ids, f"c{i}": convs, f"m{i}": msgs}
    # Straight to the connection: only these columns change, which the ORM never writes.
    connection = session.connection()
    if groups and not locked and connection.dialect.name != "sqlite":
        # Sends into different conversations run side by side on PostgreSQL and share staff,
        # whose rows each one updates. An UPDATE locks rows in whatever order its plan meets
        # them, so two sends could lock users 1 and 2 in opposite orders and deadlock: the rows
        # are locked first, in id order, by a statement of their own. (A locking subquery in
        # the UPDATE does not do: its outer scan still meets versions older than the ones the
        # subquery locked, from the statement's snapshot, and waits in their queues: it
        # deadlocked under load.) SQLite has one writer at a time and needs none of it.
        _LOCK_IN_ORDER.run(connection, {"ids": ids})
    rows = statement.run(connection, params).rows
    totals = {user_id: (int(convs), int(msgs)) for user_id, convs, msgs in rows}
    _refresh_loaded(session, totals)
    return totals


_COLUMNS = (_USERS.c.id, _USERS.c.unread_conversations, _USERS.c.unread_messages)
# Run on the driver's cursor (jobchat.db.prepared): every send runs two or three of these.
_READ = Prepared(select(*_COLUMNS).where(in_ids(_USERS.c.id, "ids")))


def locking_in_order(user_ids: ColumnElement[bool]) -> Select[tuple[int]]:
    """The users' rows that ``user_ids`` (a condition on ``users.id``) picks, locked in id order
    for ``shift_totals`` (PostgreSQL; see there why). A caller may run it as a part of a
    statement of its own (a CTE; rows are locked in the order the sort gives them) as long as
    every row is read, then shift with ``locked=True``: the UPDATE itself must stay a statement
    of its own."""
    return select(_USERS.c.id).where(user_ids).order_by(_USERS.c.id).with_for_update(key_share=True)


_LOCK_IN_ORDER = Prepared(locking_in_order(in_ids(_USERS.c.id, "ids")))


@cache
def _shift_statement(n_groups: int) -> Prepared:
    """UPDATE users SET unread_conversations = unread_conversations + CASE WHEN id IN (:g0)
    THEN :c0 WHEN id IN (:g1) THEN :c1 … ELSE 0 END (the same for messages with :m0, :m1 …)
    WHERE id IN (:ids) RETURNING the totals: built once per number of distinct deltas (a send
    has up to three: readers who had nothing unread, the others, and the writer)."""

    def shifted(column: ColumnElement[int], prefix: str) -> ColumnElement[int]:
        whens = [
            (
                in_ids(_USERS.c.id, f"g{i}"),
                bindparam(f"{prefix}{i}", type_=Integer()),
            )
            for i in range(n_groups)
        ]
        return column + case(*whens, else_=0)

    return Prepared(
        update(_USERS)
        .where(in_ids(_USERS.c.id, "ids"))
        .values(
            unread_conversations=shifted(_USERS.c.unread_conversations, "c"),
            unread_messages=shifted(_USERS.c.unread_messages, "m"),
        )
        .returning(*_COLUMNS)
    )


def _refresh_loaded(session: Session, totals: Mapping[int, Totals]) -> None:
    """The UPDATE bypassed the ORM: give users already loaded in this session their new totals
    (usually only the writer; the identity map holds a handful of objects)."""
    for state in session.identity_map.all_states():
        key, obj = state.key, state.obj()
        if key is not None and key[0] is User and key[1][0] in totals and obj is not None:
            convs, msgs = totals[key[1][0]]
            set_committed_value(obj, "unread_conversations", convs)
            set_committed_value(obj, "unread_messages", msgs)


def expire_loaded_members(session: Session, conversation_id: int, user_ids: Iterable[int]) -> None:
    """Member rows changed by a Core statement (which leaves the session alone): any of them
    loaded in this session reload on their next use."""
    wanted = {(conversation_id, user_id) for user_id in user_ids}
    for state in session.identity_map.all_states():
        key, obj = state.key, state.obj()
        if key is not None and key[0] is Member and tuple(key[1]) in wanted and obj is not None:
            session.expire(obj)


def unread_extra(conversation: int, totals: Totals) -> dict[str, Any]:
    """What an event carries for one user: their count in its conversation and their badge."""
    return {
        "unread": {
            "conversation": conversation,
            "conversations": totals[0],
            "messages": totals[1],
        }
    }


def unread_extras(
    session: Session,
    conversation_id: int,
    user_ids: Collection[int] | None = None,
    *,
    excluding: int | None = None,
) -> dict[int, dict[str, Any]]:
    """For each user (by default: each member of the conversation but ``excluding``),
    ``{"unread": ...}``: their unread count in this conversation and their badge totals, as
    they stand in this transaction. Events carry it, so a client's badge follows every change,
    and a resumed stream shows the counts of the moment, not of now."""
    if user_ids is not None and not user_ids:
        return {}
    session.flush()
    if user_ids is None:
        stmt = (
            select(
                Member.user_id,
                Member.unread_count,
                User.unread_conversations,
                User.unread_messages,
            )
            .join(User, User.id == Member.user_id)
            .where(Member.conversation_id == conversation_id)
        )
    else:
        # A member just removed has no row here, but still gets their (new) totals.
        stmt = (
            select(
                User.id,
                func.coalesce(Member.unread_count, 0),
                User.unread_conversations,
                User.unread_messages,
            )
            .outerjoin(
                Member, and_(Member.conversation_id == conversation_id, Member.user_id == User.id)
            )
            .where(User.id.in_(user_ids))
        )
    if excluding is not None:
        stmt = stmt.where(User.id != excluding)
    return {
        uid: unread_extra(int(count), (int(convs), int(msgs)))
        for uid, count, convs, msgs in session.execute(stmt.order_by(User.id))
    }

"""Reading messages: history pages and exact unread counts."""

from __future__ import annotations

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import Exists

from jobchat.directory.models import User
from jobchat.messages.models import Delivery, HiddenMessage, Message


def _hidden_for(user_id: int) -> Exists:
    return exists().where(
        and_(HiddenMessage.message_id == Message.id, HiddenMessage.user_id == user_id)
    )


def count_unread(session: Session, conv_id: int, user_id: int, after_id: int) -> int:
    """Messages after ``after_id`` that count as unread for the user (the exact, slow way).

    Used when a read marker moves; everywhere else the count kept on the member row is read.
    """
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.conversation_id == conv_id,
                Message.id > after_id,
                Message.deleted_at.is_(None),
                (Message.author_id != user_id) | Message.author_id.is_(None),
                ~_hidden_for(user_id),
            )
        )
        or 0
    )


def history(
    session: Session, user: User, conv_id: int, *, before: int | None, limit: int
) -> tuple[list[Message], int | None]:
    """A page of messages older than ``before``, oldest first, and the cursor for the one before.

    Messages the user deleted for themself are left out; deleted-for-everyone ones stay, as
    tombstones, so the thread still reads in order.
    """
    stmt = (
        select(Message)
        .where(Message.conversation_id == conv_id, ~_hidden_for(user.id))
        .options(
            selectinload(Message.author),
            selectinload(Message.deliveries).selectinload(Delivery.recipient),
            selectinload(Message.attachments),
        )
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        stmt = stmt.where(Message.id < before)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    page = rows[:limit]
    page.reverse()
    return page, (page[0].id if more and page else None)


def history_after(
    session: Session, user: User, conv_id: int, *, after: int, limit: int
) -> list[Message]:
    """Messages newer than ``after`` that the user sees, oldest first (what a page that shows up
    to ``after`` is missing)."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == conv_id, Message.id > after, ~_hidden_for(user.id))
        .options(
            selectinload(Message.author),
            selectinload(Message.deliveries).selectinload(Delivery.recipient),
            selectinload(Message.attachments),
        )
        .order_by(Message.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def latest_visible(session: Session, user_id: int, conv_id: int) -> Message | None:
    """The newest message of the conversation the user has not deleted for themself."""
    return session.scalars(
        select(Message)
        .where(Message.conversation_id == conv_id, ~_hidden_for(user_id))
        .options(selectinload(Message.author))
        .order_by(Message.id.desc())
        .limit(1)
    ).first()


def sent_with_key(session: Session, author_id: int, key: str) -> Message | None:
    """The author's message stored with this idempotency key, if any (unique per author)."""
    return session.scalars(
        select(Message).where(Message.author_id == author_id, Message.idempotency_key == key)
    ).one_or_none()

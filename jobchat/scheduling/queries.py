"""Reading scheduled messages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.errors import Invalid, NotFound
from jobchat.scheduling.models import ScheduledMessage, ScheduledStatus

SCHEDULED_NOT_FOUND = "There is no scheduled message with that id."


def scheduled_of(
    session: Session,
    author_id: int,
    *,
    status: ScheduledStatus | None = None,
    after: int | None = None,
    limit: int = 100,
) -> tuple[list[ScheduledMessage], int | None]:
    """The author's scheduled messages, soonest first, from after the one with id ``after``:
    (a page, the cursor of the next page or None)."""
    query = select(ScheduledMessage).where(ScheduledMessage.author_id == author_id)
    if status is not None:
        query = query.where(ScheduledMessage.status == status)
    if after is not None:
        last = session.get(ScheduledMessage, after)
        if last is None or last.author_id != author_id:
            # Silently starting over from the first page would repeat what the caller has.
            raise Invalid({"after": "is not one of your scheduled messages"})
        query = query.where(
            or_(
                ScheduledMessage.send_at > last.send_at,
                and_(ScheduledMessage.send_at == last.send_at, ScheduledMessage.id > last.id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(ScheduledMessage.send_at, ScheduledMessage.id).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)


def pending_in(
    session: Session, author_id: int, conversation_id: int
) -> Sequence[ScheduledMessage]:
    """What the author has waiting to be posted in a conversation, soonest first."""
    return session.scalars(
        select(ScheduledMessage)
        .where(
            ScheduledMessage.conversation_id == conversation_id,
            ScheduledMessage.author_id == author_id,
            ScheduledMessage.status == ScheduledStatus.scheduled,
        )
        .order_by(ScheduledMessage.send_at, ScheduledMessage.id)
    ).all()


def by_idempotency_key(session: Session, author_id: int, key: str) -> ScheduledMessage | None:
    return session.scalars(
        select(ScheduledMessage).where(
            ScheduledMessage.author_id == author_id, ScheduledMessage.idempotency_key == key
        )
    ).one_or_none()


def locked(session: Session, scheduled_id: int) -> ScheduledMessage | None:
    """The row, locked until the transaction ends (PostgreSQL; SQLite's write transaction
    already lets one writer in) and read afresh: a cancel and the worker's send each see
    what the other committed, so whichever commits first wins."""
    return session.scalars(
        select(ScheduledMessage)
        .where(ScheduledMessage.id == scheduled_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def pending_count(session: Session, author_id: int) -> int:
    """How many of the author's messages are still waiting to be posted."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ScheduledMessage)
            .where(
                ScheduledMessage.author_id == author_id,
                ScheduledMessage.status == ScheduledStatus.scheduled,
            )
        )
        or 0
    )


def access_scheduled(
    session: Session, user: User, scheduled_id: int, *, lock: bool = True
) -> ScheduledMessage:
    """One of the user's own scheduled messages (nobody else sees it: "not found" for all
    others), locked for the change the caller is about to make unless ``lock`` is false."""
    row = locked(session, scheduled_id) if lock else session.get(ScheduledMessage, scheduled_id)
    if row is None or row.author_id != user.id:
        raise NotFound(SCHEDULED_NOT_FOUND)
    return row

"""Reading bulk messages: only their author sees one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.errors import NotFound
from jobchat.scheduling.bulk.models import BulkMessage, BulkRecipient, RecipientStatus

BULK_NOT_FOUND = "There is no bulk message with that id."


def own_bulk(session: Session, user: User, bulk_id: int) -> BulkMessage:
    """The bulk message, if ``user`` wrote it; 404 alike for someone else's and a missing one."""
    bulk = session.get(BulkMessage, bulk_id)
    if bulk is None or bulk.author_id != user.id:
        raise NotFound(BULK_NOT_FOUND)
    return bulk


def recipients(
    session: Session, bulk_id: int, *, skipped_only: bool = False
) -> list[BulkRecipient]:
    query = select(BulkRecipient).where(BulkRecipient.bulk_id == bulk_id)
    if skipped_only:
        query = query.where(BulkRecipient.status == RecipientStatus.skipped)
    return list(session.scalars(query.order_by(BulkRecipient.position)))


def by_key(session: Session, user: User, key: str) -> BulkMessage | None:
    return session.scalars(
        select(BulkMessage).where(
            BulkMessage.author_id == user.id, BulkMessage.idempotency_key == key
        )
    ).one_or_none()

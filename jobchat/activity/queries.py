"""Reading a conversation's activity lines."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from jobchat.activity.models import Activity


def activity_between(
    session: Session, conv_id: int, *, lowest: int, below: int | None
) -> list[Activity]:
    """The lines drawn after a message id in ``[lowest, below)`` (``below`` None: no end), in
    the order they are drawn."""
    stmt = (
        select(Activity)
        .where(Activity.conversation_id == conv_id, Activity.after_message_id >= lowest)
        .options(selectinload(Activity.actor))
        .order_by(Activity.after_message_id, Activity.id)
    )
    if below is not None:
        stmt = stmt.where(Activity.after_message_id < below)
    return list(session.scalars(stmt))

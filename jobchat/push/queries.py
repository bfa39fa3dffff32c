"""Reading push subscriptions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.push.models import PushSubscription


def subscriptions_of(session: Session, user_id: int) -> Sequence[PushSubscription]:
    return session.scalars(
        select(PushSubscription)
        .where(PushSubscription.user_id == user_id)
        .order_by(PushSubscription.created_at, PushSubscription.id)
    ).all()


def subscription_by_endpoint(session: Session, endpoint: str) -> PushSubscription | None:
    return session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))


def subscription_ids_of(session: Session, user_id: int) -> list[int]:
    """For the notification ladder: where one of ``user_id``'s pushes goes."""
    return list(
        session.scalars(
            select(PushSubscription.id)
            .where(PushSubscription.user_id == user_id)
            .order_by(PushSubscription.id)
        )
    )

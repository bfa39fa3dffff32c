"""Reading push subscriptions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from jobchat.push.models import PushSubscription


def subscriptions_of(session: Session, user_id: int) -> Sequence[PushSubscription]:
    return session.scalars(
        select(PushSubscription)
        .where(PushSubscription.user_id == user_id)
        .order_by(PushSubscription.created_at, PushSubscription.id)
    ).all()


def subscription_by_endpoint(session: Session, endpoint: str) -> PushSubscription | None:
    return session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))


def subscription_ids_by_user(
    session: Session, user_ids: Collection[int], *, before: datetime
) -> dict[int, list[int]]:
    """For the notification ladder: each user's subscription ids, oldest first, of the devices
    subscribed before ``before`` (one subscribed since was in the app then)."""
    by_user: dict[int, list[int]] = {}
    if not user_ids:
        return by_user
    rows = session.execute(
        select(PushSubscription.user_id, PushSubscription.id)
        .where(PushSubscription.user_id.in_(list(user_ids)), PushSubscription.created_at < before)
        .order_by(PushSubscription.id)
    )
    for user_id, subscription_id in rows:
        by_user.setdefault(user_id, []).append(subscription_id)
    return by_user


def subscribed_before(
    user_id: ColumnElement[int] | InstrumentedAttribute[int], before: datetime
) -> ColumnElement[bool]:
    """A condition: the user (a column of the outer query) has a device subscribed before."""
    return (
        select(PushSubscription.id)
        .where(PushSubscription.user_id == user_id, PushSubscription.created_at < before)
        .exists()
    )

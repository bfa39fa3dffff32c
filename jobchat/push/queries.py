"""Reading push subscriptions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from jobchat.auth.models import Credential
from jobchat.push.models import PushSubscription


def subscriptions_of(session: Session, user_id: int) -> Sequence[PushSubscription]:
    return session.scalars(
        select(PushSubscription)
        .where(PushSubscription.user_id == user_id)
        .order_by(PushSubscription.created_at, PushSubscription.id)
    ).all()


def subscription_by_endpoint(session: Session, endpoint: str) -> PushSubscription | None:
    return session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))


def signed_in(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """A condition: the subscription's sign-in still lets its owner in (or it was made without
    one); a push for a device signed out is neither queued nor sent. The owner's own
    deactivation is the caller's to check."""
    live = (
        select(Credential.id)
        .where(
            Credential.id == PushSubscription.credential_id,
            Credential.revoked_at.is_(None),
            or_(Credential.expires_at.is_(None), Credential.expires_at > now),
        )
        .exists()
    )
    return or_(PushSubscription.credential_id.is_(None), live)


# Built once: the ladder asks for every message, and building it cost more than running it.
_DEVICES = (
    select(PushSubscription.user_id, PushSubscription.id)
    .where(
        PushSubscription.user_id.in_(bindparam("user_ids", expanding=True)),
        PushSubscription.created_at < bindparam("before"),
        signed_in(bindparam("now")),
    )
    .order_by(PushSubscription.id)
)


def subscription_ids_by_user(
    session: Session, user_ids: Collection[int], *, before: datetime, now: datetime
) -> dict[int, list[int]]:
    """For the notification ladder: each user's subscription ids, oldest first, of the devices
    subscribed before ``before`` (one subscribed since was in the app then) and still signed
    in at ``now``."""
    by_user: dict[int, list[int]] = {}
    if not user_ids:
        return by_user
    params = {"user_ids": list(user_ids), "before": before, "now": now}
    rows = session.execute(_DEVICES, params)
    for user_id, subscription_id in rows:
        by_user.setdefault(user_id, []).append(subscription_id)
    return by_user


def subscribed_before(
    user_id: ColumnElement[int] | InstrumentedAttribute[int],
    before: datetime | ColumnElement[datetime],
) -> ColumnElement[bool]:
    """A condition: the user (a column of the outer query) has a device subscribed before.
    (Whether its sign-in still counts is left to subscription_ids_by_user: this only narrows
    whom presence is asked about.)"""
    return (
        select(PushSubscription.id)
        .where(PushSubscription.user_id == user_id, PushSubscription.created_at < before)
        .exists()
    )

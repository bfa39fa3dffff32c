"""Writing push subscriptions: the only code that does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.egress import url_problem
from jobchat.errors import Invalid, NotFound
from jobchat.push.models import PushSubscription
from jobchat.push.queries import subscription_by_endpoint, subscriptions_of
from jobchat.push.schemas import SubscriptionIn

# A person has a phone, a laptop, a browser or two at work: more than this is not devices but
# someone trying to make us push to many addresses. The oldest go first.
MAX_SUBSCRIPTIONS_PER_USER = 20


def do_subscribe(
    session: Session,
    user: User,
    body: SubscriptionIn,
    *,
    now: datetime,
    allow_insecure: bool,
    credential_id: int | None = None,
) -> tuple[PushSubscription, bool]:
    """The subscription, and whether it is new. The same endpoint again updates its keys; one
    another user subscribed moves to this one (the browser belongs to whoever subscribed last).
    ``credential_id``: the sign-in it came with; it ends with that sign-in."""
    problem = url_problem(body.endpoint, allow_insecure=allow_insecure)
    if problem is not None:
        raise Invalid({"endpoint": problem})
    sub = subscription_by_endpoint(session, body.endpoint)
    created = sub is None
    if sub is None:
        sub = PushSubscription(endpoint=body.endpoint, user_id=user.id, created_at=now)
        session.add(sub)
    elif sub.user_id != user.id:
        sub.user_id = user.id
        sub.created_at = now
    sub.p256dh = body.keys.p256dh
    sub.auth = body.keys.auth
    sub.credential_id = credential_id
    session.flush()
    _drop_oldest(session, user.id, keep=sub.id)
    return sub, created


def _drop_oldest(session: Session, user_id: int, *, keep: int) -> None:
    subs = [s for s in subscriptions_of(session, user_id) if s.id != keep]
    excess = len(subs) + 1 - MAX_SUBSCRIPTIONS_PER_USER
    for sub in subs[: max(excess, 0)]:
        session.delete(sub)


def do_unsubscribe(session: Session, user: User, subscription_id: int) -> None:
    sub = session.get(PushSubscription, subscription_id)
    if sub is None or sub.user_id != user.id:
        raise NotFound("There is no push subscription with that id.")
    session.delete(sub)


def do_forget_subscription(session: Session, subscription_id: int) -> bool:
    """The push service says the subscription is gone (404/410): so is ours."""
    result = session.execute(delete(PushSubscription).where(PushSubscription.id == subscription_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]

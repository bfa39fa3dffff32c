"""Reading webhooks and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from jobchat.webhooks.models import (
    DeliveryState,
    EventType,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)


def subscribed(session: Session, type: EventType) -> list[int]:
    """The enabled webhooks that take ``type``. Asked on every send: one query over a table of
    a handful of rows (the event lists are filtered here; a JSON containment test reads
    differently on each database and is no faster at this size)."""
    rows = session.execute(
        select(Webhook.id, Webhook.events).where(Webhook.disabled_at.is_(None))
    ).all()
    return [row.id for row in rows if type in row.events]


@dataclass(frozen=True)
class Lane:
    """Events that reach an endpoint one after the other: one conversation's, or, for events
    about no conversation (SMS consent), one candidate's."""

    conversation_id: int | None
    candidate_id: int | None

    @classmethod
    def of(cls, conversation_id: int | None, candidate_id: int | None) -> Lane | None:
        if conversation_id is not None:
            return cls(conversation_id, None)
        if candidate_id is not None:
            return cls(None, candidate_id)
        return None


def lane_head(session: Session, webhook_id: int, lane: Lane) -> WebhookDelivery | None:
    """The oldest pending delivery of one webhook in one lane."""
    if lane.conversation_id is not None:
        in_lane = WebhookDelivery.conversation_id == lane.conversation_id
    else:
        in_lane = and_(
            WebhookDelivery.conversation_id.is_(None),
            WebhookDelivery.candidate_id == lane.candidate_id,
        )
    return session.scalars(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            in_lane,
            WebhookDelivery.status == DeliveryState.pending,
        )
        .order_by(WebhookDelivery.id)
        .limit(1)
    ).first()


def delivery_by_msg_id(session: Session, msg_id: str) -> WebhookDelivery | None:
    return session.scalars(select(WebhookDelivery).where(WebhookDelivery.msg_id == msg_id)).first()


def all_webhooks(session: Session) -> Sequence[Webhook]:
    return session.scalars(select(Webhook).order_by(Webhook.id)).all()


def recent_attempts(
    session: Session, webhook_id: int, *, limit: int
) -> Sequence[tuple[WebhookAttempt, WebhookDelivery]]:
    rows = session.execute(
        select(WebhookAttempt, WebhookDelivery)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookAttempt.webhook_id == webhook_id)
        .order_by(WebhookAttempt.id.desc())
        .limit(limit)
    ).all()
    return [(row[0], row[1]) for row in rows]

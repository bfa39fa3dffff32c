"""Reading webhooks and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
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


def lane_head(session: Session, webhook_id: int, conversation_id: int) -> WebhookDelivery | None:
    """The oldest pending delivery of one webhook about one conversation."""
    return session.scalars(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.conversation_id == conversation_id,
            WebhookDelivery.status == DeliveryState.pending,
        )
        .order_by(WebhookDelivery.id)
        .limit(1)
    ).first()


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

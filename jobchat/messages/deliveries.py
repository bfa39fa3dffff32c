"""What the outbound jobs record on a delivery: the only writers of its state after the send."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.worker import Failure
from jobchat.messages.models import Delivery, DeliveryStatus
from jobchat.webhooks import events as webhook_events

MAX_ERROR_CHARS = 1000


def record_delivery_failure(
    session: Session, job: Claimed, failure: Failure, now: datetime
) -> None:
    """The failure hook of the delivery jobs (payload ``{"delivery_id"}``): a failed attempt
    shows on the delivery (attempts, the last error); the final one marks it failed. A delivery
    cancelled or settled meanwhile is left alone."""
    delivery = session.get(Delivery, int(job.payload["delivery_id"]))
    # A held text fails here too: its job found the candidate opted out when the hold ended.
    if delivery is None or delivery.status not in Delivery.UNSENT:
        return
    delivery.attempts = job.attempt
    delivery.last_error = failure.error[:MAX_ERROR_CHARS]
    delivery.updated_at = now
    if failure.code is not None:
        delivery.error_code = failure.code
    if failure.final:
        delivery.status = DeliveryStatus.failed
        delivery.held_until = None
        webhook_events.delivery_changed(session, delivery, now)


def record_delivery_sent(
    session: Session, delivery_id: int, job: Claimed, provider_id: str, now: datetime
) -> Delivery | None:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    # Sent even if it was cancelled meanwhile: it did go out.
    delivery.status = DeliveryStatus.sent
    delivery.attempts = job.attempt
    delivery.last_error = None
    delivery.provider_id = provider_id
    delivery.updated_at = now
    webhook_events.delivery_changed(session, delivery, now)
    return delivery

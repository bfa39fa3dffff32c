"""What an attempt to deliver leaves behind, written in the transaction that marks its job
done: the log row, the delivery's state, the webhook's health, and the lane's next job.

Every attempt is a job of its own that always succeeds as a job: the retries are ours, timed by
the jobs queue's backoff settings but kept up for a day (GIVE_UP_AFTER) rather than for its
attempt count, and the webhook is disabled once it has failed for three days (DISABLE_AFTER).

As the Standard Webhooks specification asks: a ``410 Gone`` disables the webhook at once (the
receiver wants no more); a ``Retry-After`` on a failed answer is waited out when it asks for
longer than our backoff, up to the longest backoff (JOBCHAT_JOB_BACKOFF_MAX_SECONDS); and an
endpoint that answers 2xx again after failing has its other conversations' waiting events sent
at once rather than at the end of their backoff (which may be far off by then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from jobchat.jobqueue.actions import RetryPolicy
from jobchat.webhooks.actions import advance_lane, disable, queue_attempt, wake_lanes
from jobchat.webhooks.models import DeliveryState, Webhook, WebhookAttempt, WebhookDelivery
from jobchat.webhooks.queries import Lane

GIVE_UP_AFTER = timedelta(days=1)
DISABLE_AFTER = timedelta(days=3)
MAX_ERROR_CHARS = 500
SUCCESS_EVERY = timedelta(minutes=1)
GONE = 410


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    job_id: int
    status_code: int | None  # None: no answer (refused, unreachable, timed out)
    error: str | None  # None: a 2xx
    duration_ms: int
    # Seconds the answer's Retry-After asked for (None: it did not).
    retry_after: float | None = None


def record_attempt(
    session: Session, attempt: Attempt, *, now: datetime, policy: RetryPolicy
) -> None:
    delivery = session.get(WebhookDelivery, attempt.delivery_id, with_for_update=True)
    if (
        delivery is None  # forgotten (an erasure) or its webhook deleted meanwhile
        or delivery.job_id != attempt.job_id
        or delivery.status != DeliveryState.pending
    ):
        return
    webhook = session.get_one(Webhook, delivery.webhook_id)
    error = None if attempt.error is None else attempt.error[:MAX_ERROR_CHARS]
    session.add(
        WebhookAttempt(
            webhook_id=webhook.id,
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=attempt.status_code,
            error=error,
            duration_ms=attempt.duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.job_id = None
    delivery.next_attempt_at = None
    if error is None:
        delivery.status = DeliveryState.delivered
        delivery.delivered_at = now
        # Written at most once a minute: every delivery to it would otherwise take the
        # webhook's row lock, one after the other.
        if webhook.last_success_at is None or now - webhook.last_success_at >= SUCCESS_EVERY:
            webhook.last_success_at = now
        if webhook.failing_since is not None:
            webhook.failing_since = None
            # Back: what other conversations' heads wait out in backoff goes now.
            wake_lanes(session, webhook.id, now, but=delivery.id)
        advance_lane(session, webhook.id, _lane(delivery), now)
        return
    if webhook.failing_since is None:
        webhook.failing_since = now
    if attempt.status_code == GONE:
        disable(
            session,
            webhook,
            reason="the endpoint answered 410 Gone: it takes no more events",
            now=now,
        )
        return
    if now - webhook.failing_since >= DISABLE_AFTER:
        disable(
            session,
            webhook,
            reason=f"failing since {webhook.failing_since.isoformat()}: {error}",
            now=now,
        )
        return
    if now - delivery.created_at >= GIVE_UP_AFTER:
        # Given up: the conversation's next events are not held back for ever by this one.
        delivery.status = DeliveryState.failed
        advance_lane(session, webhook.id, _lane(delivery), now)
        return
    wait = policy.delay(delivery.attempts)
    if attempt.retry_after is not None:
        # Capped before it is a timedelta: a huge value would overflow one.
        asked = min(attempt.retry_after, policy.max_seconds)
        wait = max(wait, timedelta(seconds=asked))
    queue_attempt(session, delivery, now=now, at=now + wait)


def cancel(session: Session, delivery_id: int, job_id: int) -> None:
    """The job found its webhook disabled: the delivery will not go out."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if (
        delivery is not None
        and delivery.job_id == job_id
        and delivery.status == DeliveryState.pending
    ):
        delivery.status = DeliveryState.cancelled
        delivery.job_id = None


def _lane(delivery: WebhookDelivery) -> Lane | None:
    return Lane.of(delivery.conversation_id, delivery.candidate_id)

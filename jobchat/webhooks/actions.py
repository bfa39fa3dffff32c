"""Writing webhooks and their deliveries: the only code that does.

``emit`` is what the rest of the house calls, inside the transaction of the change it reports:
one delivery row per webhook that takes the event, and a job for it when it is first in its
lane. A lane is (webhook, conversation), or (webhook, candidate) for events about no
conversation (SMS consent): only its oldest pending delivery has a job, and the job that
settles it starts the next one (``advance_lane``), so one conversation's events reach an
endpoint in the order they happened.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from jobchat.conversations.models import Conversation
from jobchat.directory.models import User
from jobchat.errors import Conflict, Invalid, NotFound
from jobchat.events.actions import json_time
from jobchat.jobqueue.actions import bring_forward, enqueue
from jobchat.webhooks.models import (
    DeliveryState,
    EventType,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from jobchat.webhooks.queries import Lane, lane_head, subscribed
from jobchat.webhooks.signing import SECRET_PREFIX

DELIVER_JOB = "webhook.deliver"
SECRET_BYTES = 32
# After a rotation the old secret still signs for this long (receivers update meanwhile).
ROTATION_OVERLAP = timedelta(hours=24)
# Endpoints an installation may register (an ATS needs one or two).
MAX_WEBHOOKS = 50

Data = dict[str, Any]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def emit(
    session: Session,
    type: EventType,
    data: Data | Callable[[], Data],
    *,
    now: datetime,
    conversation_id: int | None = None,
    message_id: int | None = None,
    candidate_id: int | None = None,
    hooks: list[int] | None = None,
) -> int:
    """Queue ``type`` for every enabled webhook that takes it; how many did. ``data`` may be a
    function, called only then: most sends have no webhook to tell, and pay one small query.
    ``hooks``: those webhooks, when the caller has looked them up already."""
    hooks = subscribed(session, type) if hooks is None else hooks
    if not hooks:
        return 0
    if callable(data):
        data = data()
    payload = {"type": str(type), "timestamp": json_time(now), "data": data}
    lane = Lane.of(conversation_id, candidate_id)
    if lane is not None:
        _lock_lane(session, lane)
    for webhook_id in hooks:
        delivery = WebhookDelivery(
            webhook_id=webhook_id,
            msg_id="msg_" + secrets.token_hex(16),
            type=str(type),
            payload=payload,
            conversation_id=conversation_id,
            message_id=message_id,
            candidate_id=candidate_id,
            status=DeliveryState.pending,
            attempts=0,
            created_at=now,
        )
        waits = lane is not None and lane_head(session, webhook_id, lane) is not None
        if not waits:
            # Before the delivery is added: it is inserted with its job's id, not updated.
            queue_attempt(session, delivery, now=now)
        session.add(delivery)
    session.flush()
    return len(hooks)


def _lock_lane(session: Session, lane: Lane) -> None:
    """Lanes change under the row lock of their conversation (or candidate), on PostgreSQL: an
    event written while the job of the one before it settles would otherwise find that one
    still pending (and wait for it) while the job finds no next one (not yet committed), and
    stay stranded. The change that emits has usually locked that row already. SQLite's writers
    take turns anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return
    if lane.conversation_id is not None:
        row = select(Conversation.id).where(Conversation.id == lane.conversation_id)
    else:
        row = select(User.id).where(User.id == lane.candidate_id)
    session.execute(row.with_for_update())


def queue_attempt(
    session: Session, delivery: WebhookDelivery, *, now: datetime, at: datetime | None = None
) -> None:
    """A job for the delivery's next attempt; the delivery names it, and only that job may
    send it (an older one, or one queued twice, finds another id and does nothing). The job
    finds the delivery by its ``msg_id`` (a random id, nothing personal), so the delivery
    needs no id of its own yet."""
    job = enqueue(session, DELIVER_JOB, {"msg_id": delivery.msg_id}, now=now, run_at=at)
    session.flush()
    delivery.job_id = job.id
    delivery.next_attempt_at = at or now


def advance_lane(session: Session, webhook_id: int, lane: Lane | None, now: datetime) -> None:
    """The lane's head was settled (delivered, given up or deleted): the next one's turn."""
    if lane is None:
        return
    _lock_lane(session, lane)
    head = lane_head(session, webhook_id, lane)
    if head is not None and head.job_id is None:
        queue_attempt(session, head, now=now)


def wake_lanes(session: Session, webhook_id: int, now: datetime, *, but: int) -> int:
    """The webhook's endpoint answered 2xx again after failing: every other lane's head that
    waits out its backoff is due now (its job's time brought forward), so a receiver that was
    down gets what it missed as soon as it is back, not hours later. Returns how many."""
    waiting = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.job_id).where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.status == DeliveryState.pending,
            WebhookDelivery.job_id.is_not(None),
            WebhookDelivery.next_attempt_at > now,
            WebhookDelivery.id != but,
        )
    ).all()
    if not waiting:
        return 0
    for start in range(0, len(waiting), 500):
        part = waiting[start : start + 500]
        bring_forward(session, [row.job_id for row in part], now)
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_([row.id for row in part]),
                WebhookDelivery.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(waiting)


def scrub_message(session: Session, message_id: int) -> int:
    """A message deleted for everyone: every ``message.created`` delivery of it, pending or
    settled, keeps only its tombstone (no subject, body or file names; ``deleted`` true), as
    the event log does. A pending one still goes out, so the ATS learns of the message and
    then of its deletion in order, without the words. Returns how many were rewritten."""
    found = session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.message_id == message_id,
            WebhookDelivery.type == EventType.message_created,
        )
    ).all()
    for delivery in found:
        data = delivery.payload.get("data") or {}
        message = {
            **(data.get("message") or {}),
            "subject": None,
            "body": "",
            "attachments": [],
            "deleted": True,
        }
        # A new dict: the JSON column is saved only when it is assigned.
        delivery.payload = {**delivery.payload, "data": {**data, "message": message}}
    return len(found)


def forget(
    session: Session,
    *,
    message_ids: Iterable[int] = (),
    conversation_ids: Iterable[int] = (),
    candidate_ids: Iterable[int] = (),
) -> int:
    """Delete every webhook delivery (with its log rows) about these messages, conversations
    or candidates, for an erasure; returns how many rows went. Their jobs hold only the
    delivery's random msg_id and find nothing. A lane whose head went moves on to its next
    delivery."""
    messages, convs, candidates = list(message_ids), list(conversation_ids), list(candidate_ids)
    about = [
        column.in_(ids)
        for column, ids in (
            (WebhookDelivery.message_id, messages),
            (WebhookDelivery.conversation_id, convs),
            (WebhookDelivery.candidate_id, candidates),
        )
        if ids
    ]
    if not about:
        return 0
    found = session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.webhook_id,
            WebhookDelivery.conversation_id,
            WebhookDelivery.candidate_id,
            WebhookDelivery.job_id,
        ).where(or_(*about))
    ).all()
    if not found:
        return 0
    ids = [row.id for row in found]
    gone = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        gone += _delete(session, WebhookAttempt, WebhookAttempt.delivery_id.in_(chunk))
        gone += _delete(session, WebhookDelivery, WebhookDelivery.id.in_(chunk))
    # A lane whose head (the one with a job) went would wait for ever for it.
    heads = {
        (row.webhook_id, lane)
        for row in found
        if row.job_id is not None
        and (lane := Lane.of(row.conversation_id, row.candidate_id)) is not None
    }
    for webhook_id, lane in heads:
        head = lane_head(session, webhook_id, lane)
        if head is not None and head.job_id is None:
            queue_attempt(session, head, now=head.created_at)
    return gone


def _delete(session: Session, model: Any, where: Any) -> int:
    result = session.execute(
        delete(model).where(where).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- managing webhooks (the integration's API) ----------------------------------------------


def do_create_webhook(
    session: Session, *, url: str, events: list[EventType], description: str | None, now: datetime
) -> Webhook:
    """A new webhook with a new secret. At most MAX_WEBHOOKS: every send reads them all."""
    if (session.scalar(select(func.count()).select_from(Webhook)) or 0) >= MAX_WEBHOOKS:
        raise Conflict(
            f"There are {MAX_WEBHOOKS} webhooks already; delete one first.",
            code="too_many_webhooks",
        )
    webhook = Webhook(
        url=url,
        events=sorted({str(e) for e in events}),
        description=description,
        secret=new_secret(),
        created_at=now,
    )
    session.add(webhook)
    session.flush()
    return webhook


def do_delete_webhook(session: Session, webhook: Webhook) -> None:
    """It and everything queued or logged for it; its jobs find nothing to do."""
    _delete(session, WebhookAttempt, WebhookAttempt.webhook_id == webhook.id)
    _delete(session, WebhookDelivery, WebhookDelivery.webhook_id == webhook.id)
    session.delete(webhook)


def do_rotate_secret(session: Session, webhook: Webhook, *, now: datetime) -> Webhook:
    """A new secret; the current one still signs (beside it) for ROTATION_OVERLAP. Rotating
    again within that time drops the oldest: only two are ever sent."""
    webhook.previous_secret = webhook.secret
    webhook.previous_until = now + ROTATION_OVERLAP
    webhook.secret = new_secret()
    return webhook


def do_enable_webhook(session: Session, webhook: Webhook) -> Webhook:
    """Take events again (those that happen from now on: what was cancelled stays so)."""
    webhook.disabled_at = None
    webhook.disabled_reason = None
    webhook.failing_since = None
    return webhook


def disable(session: Session, webhook: Webhook, *, reason: str, now: datetime) -> None:
    """No more deliveries: its pending ones are cancelled (their jobs find them so)."""
    webhook.disabled_at = now
    webhook.disabled_reason = reason
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook.id,
            WebhookDelivery.status == DeliveryState.pending,
        )
        .values(status=DeliveryState.cancelled, job_id=None)
        .execution_options(synchronize_session=False)
    )


def webhook_for(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound("There is no webhook with that id.")
    return webhook


def unknown_events(events: Iterable[str]) -> None:
    known = {str(e) for e in EventType}
    unknown = sorted({e for e in events if e not in known})
    if unknown:
        raise Invalid(
            {"events": f"unknown event type(s): {', '.join(unknown)}"},
            code="unknown_event_type",
        )


# The delivery log, and the events that were settled, are kept this long.
KEEP_LOG = timedelta(days=14)


def prune_log(session: Session, *, now: datetime) -> int:
    """Forget attempts, and settled deliveries, older than KEEP_LOG (the worker's hourly
    pruning): the log stays bounded, and event bodies do not outlive their use."""
    before = now - KEEP_LOG
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.created_at < before, WebhookDelivery.status != DeliveryState.pending
    )
    gone = _delete(session, WebhookAttempt, WebhookAttempt.attempted_at < before)
    gone += _delete(session, WebhookAttempt, WebhookAttempt.delivery_id.in_(old))
    return gone + _delete(session, WebhookDelivery, WebhookDelivery.id.in_(old))

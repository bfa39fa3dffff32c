"""The webhooks API (integration key): register, list, delete, rotate, re-enable, and the log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from jobchat.auth.deps import Integration, State
from jobchat.egress import url_problem
from jobchat.errors import Invalid
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId
from jobchat.webhooks.actions import (
    do_create_webhook,
    do_delete_webhook,
    do_enable_webhook,
    do_rotate_secret,
    unknown_events,
    webhook_for,
)
from jobchat.webhooks.models import EventType
from jobchat.webhooks.queries import all_webhooks, recent_attempts
from jobchat.webhooks.schemas import (
    AttemptList,
    AttemptOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookWithSecret,
)

router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    dependencies=[Integration],
    responses=error_responses(401, 403),
)


@router.post(
    "", status_code=201, response_model=WebhookWithSecret, responses=error_responses(409, 422)
)
def post_webhook(body: WebhookIn, state: State) -> WebhookWithSecret:
    """Register an endpoint for these event types. The answer carries the signing secret,
    shown this once. Each event is POSTed as `{"type", "timestamp", "data"}` with the Standard
    Webhooks headers `webhook-id`, `webhook-timestamp` and `webhook-signature`."""
    problem = url_problem(body.url, allow_insecure=state.settings.webhooks_allow_insecure)
    if problem is not None:
        raise Invalid({"url": problem})
    unknown_events(body.events)
    with state.db.write() as session:
        webhook = do_create_webhook(
            session,
            url=body.url,
            events=[EventType(e) for e in body.events],
            description=body.description,
            now=state.clock.now(),
        )
        return WebhookWithSecret.with_secret(webhook)


@router.get("", response_model=WebhookList)
def get_webhooks(state: State) -> WebhookList:
    """Every webhook, enabled or not (and why not, and failing since when); no secrets."""
    with state.db.read() as session:
        return WebhookList(items=[WebhookOut.of(w) for w in all_webhooks(session)])


@router.delete(
    "/{webhook_id}", status_code=204, response_class=Response, responses=error_responses(404)
)
def delete_webhook(webhook_id: PathId, state: State) -> Response:
    """Delete it, with what was queued for it (nothing more is sent) and its log."""
    with state.db.write() as session:
        do_delete_webhook(session, webhook_for(session, webhook_id))
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=error_responses(404),
)
def rotate_secret(webhook_id: PathId, state: State) -> WebhookWithSecret:
    """A new secret, shown this once. For 24 hours every request carries two signatures,
    the new secret's and the old one's (`v1,<new> v1,<old>`), so receivers can switch."""
    with state.db.write() as session:
        webhook = do_rotate_secret(session, webhook_for(session, webhook_id), now=state.clock.now())
        return WebhookWithSecret.with_secret(webhook)


@router.post("/{webhook_id}/enable", response_model=WebhookOut, responses=error_responses(404))
def enable_webhook(webhook_id: PathId, state: State) -> WebhookOut:
    """Take events again after it was disabled (it failed for three days, or answered 410
    Gone): those that happen from now on; what was cancelled at the disabling is not sent."""
    with state.db.write() as session:
        return WebhookOut.of(do_enable_webhook(session, webhook_for(session, webhook_id)))


@router.get("/{webhook_id}/deliveries", response_model=AttemptList, responses=error_responses(404))
def get_deliveries(
    webhook_id: PathId,
    state: State,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AttemptList:
    """The latest attempts to deliver, newest first: the event, the endpoint's answer (or the
    error), when, and how long it took. Kept for 14 days."""
    with state.db.read() as session:
        webhook_for(session, webhook_id)
        return AttemptList(
            items=[
                AttemptOut.of(a, d) for a, d in recent_attempts(session, webhook_id, limit=limit)
            ]
        )

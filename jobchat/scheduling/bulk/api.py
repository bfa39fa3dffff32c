"""Bulk messages: one message to up to 1,000 candidates, each in their own chat (staff only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from jobchat.auth.deps import CurrentUser
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId
from jobchat.messages.actions import Limits
from jobchat.scheduling.bulk.queries import own_bulk, recipients
from jobchat.scheduling.bulk.requests import queue_as
from jobchat.scheduling.bulk.schemas import BulkMessageIn, BulkMessageOut

router = APIRouter(
    prefix="/api/v1/bulk-messages", tags=["bulk messages"], responses=error_responses(401)
)

_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued (or, for a repeated idempotency key, the earlier one)."},
    **error_responses(403, 409, 422, 429),
}


@router.post("", status_code=202, response_model=BulkMessageOut, responses=_QUEUED)
def post_bulk(body: BulkMessageIn, caller: CurrentUser, response: Response) -> BulkMessageOut:
    """Queue one message, rendered for each candidate, into each application's one-to-one
    chat (made when missing). Who cannot be reached (unknown, not yours to message, no email,
    no consent, a merge field with no value) is skipped with a reason; the rest still go. The
    worker posts them in batches; follow progress with GET. A retry with the same
    idempotency key answers with the first (even once its send_at has passed); one author may
    have JOBCHAT_MAX_ACTIVE_BULKS_PER_USER queued or sending at once (409
    too_many_bulk_messages)."""
    state = caller.state
    with caller.write() as (session, user):
        bulk, replayed = queue_as(
            session,
            user,
            body,
            limiter=state.send_limiter,
            limits=Limits.of(state.settings),
            max_active=state.settings.max_active_bulks_per_user,
            now=caller.now,
        )
        out = BulkMessageOut.of(bulk, recipients(session, bulk.id, skipped_only=True))
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.get("/{bulk_id}", response_model=BulkMessageOut, responses=error_responses(404))
def get_bulk(
    bulk_id: PathId,
    caller: CurrentUser,
    detail: Annotated[
        bool,
        Query(
            alias="recipients",
            description="Also list every recipient, in the order given, with the chat and "
            "message each got (up to 1,000 rows: leave it off to poll progress).",
        ),
    ] = False,
) -> BulkMessageOut:
    """Progress: counts and who was skipped, and why. Only its author sees it."""
    with caller.read() as (session, user):
        bulk = own_bulk(session, user, bulk_id)
        rows = recipients(session, bulk.id, skipped_only=not detail)
        return BulkMessageOut.of(bulk, rows, detail=detail)

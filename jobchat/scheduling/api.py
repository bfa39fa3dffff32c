"""The caller's scheduled messages (user token). They are made by the send endpoint with
``send_at`` (jobchat.messages.api)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from jobchat.auth.deps import CurrentUser
from jobchat.http_errors import error_responses
from jobchat.inputs import MAX_ID, PathId
from jobchat.messages.actions import Limits
from jobchat.scheduling.models import ScheduledStatus
from jobchat.scheduling.queries import access_scheduled, scheduled_of
from jobchat.scheduling.requests import cancel_as, update_as
from jobchat.scheduling.schemas import ScheduledList, ScheduledOut, ScheduledPatchIn

router = APIRouter(
    prefix="/api/v1/scheduled-messages",
    tags=["scheduled messages"],
    responses=error_responses(401, 404),
)


@router.get("", response_model=ScheduledList, responses=error_responses(422))
def list_scheduled(
    caller: CurrentUser,
    status: Annotated[
        ScheduledStatus | None, Query(description="Only those in this status.")
    ] = None,
    after: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A scheduled message's id (next_cursor).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 100,
) -> ScheduledList:
    """The caller's own scheduled messages in every status (unless filtered), soonest first."""
    with caller.read() as (session, user):
        rows, cursor = scheduled_of(session, user.id, status=status, after=after, limit=limit)
        return ScheduledList(items=[ScheduledOut.of(r) for r in rows], next_cursor=cursor)


@router.get("/{scheduled_id}", response_model=ScheduledOut)
def get_scheduled(scheduled_id: PathId, caller: CurrentUser) -> ScheduledOut:
    """One of the caller's scheduled messages (anyone else's: 404)."""
    with caller.read() as (session, user):
        return ScheduledOut.of(access_scheduled(session, user, scheduled_id, lock=False))


@router.patch("/{scheduled_id}", response_model=ScheduledOut, responses=error_responses(409, 422))
def patch_scheduled(
    scheduled_id: PathId, body: ScheduledPatchIn, caller: CurrentUser
) -> ScheduledOut:
    """Move it, or change its text or subject, while it is still scheduled (409 after),
    checked as a send would be; a move counts against the send rate (429)."""
    with caller.write() as (session, user):
        return update_as(
            session,
            user,
            scheduled_id,
            send_at=body.send_at,
            body=body.body,
            subject=body.subject,
            subject_given="subject" in body.model_fields_set,
            limiter=caller.state.send_limiter,
            limits=Limits.of(caller.state.settings),
            now=caller.now,
        )


@router.delete(
    "/{scheduled_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(409),
)
def delete_scheduled(scheduled_id: PathId, caller: CurrentUser) -> Response:
    """Cancel it while it is still scheduled (409 once sent, failed or cancelled)."""
    with caller.write() as (session, user):
        cancel_as(session, user, scheduled_id, now=caller.now)
    return Response(status_code=204)

"""Message history, sending and deleting (user token)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from jobchat import access
from jobchat.auth.deps import CurrentUser
from jobchat.errors import Invalid
from jobchat.http_errors import error_responses
from jobchat.inputs import MAX_ID, PathId
from jobchat.messages.actions import Limits, Outgoing
from jobchat.messages.queries import history
from jobchat.messages.requests import delete_as, send_as
from jobchat.messages.schemas import MessageOut, MessagePage, SendMessageIn
from jobchat.scheduling.requests import schedule_as
from jobchat.scheduling.schemas import ScheduledOut
from jobchat.templates.requests import fill_for_send, usable_template

router = APIRouter(prefix="/api/v1", tags=["messages"], responses=error_responses(401, 404))


@router.get("/conversations/{conversation_id}/messages", response_model=MessagePage)
def list_messages(
    conversation_id: PathId,
    caller: CurrentUser,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A message id (next_cursor).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """History, newest page first; oldest first within a page; ``before`` pages back."""
    with caller.read() as (session, user):
        access.access_conversation(session, user, conversation_id)
        page, next_cursor = history(session, user, conversation_id, before=before, limit=limit)
        return MessagePage(
            items=[MessageOut.of(m, show_deliveries=user.is_staff) for m in page],
            next_cursor=next_cursor,
        )


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses={
        202: {"model": ScheduledOut, "description": "Scheduled for send_at."},
        **error_responses(409, 413, 422, 429),
    },
)
def send_message(
    conversation_id: PathId, body: SendMessageIn, caller: CurrentUser, response: Response
) -> MessageOut | JSONResponse:
    """Send in the app, by email or by SMS, now or at ``send_at`` (202), written or from a
    template. A retry with the same idempotency key is stored once."""
    with caller.write() as (session, user):
        text, subject = body.body, body.subject
        if body.template is not None:
            conv, _ = access.access_conversation(session, user, conversation_id)
            filled = fill_for_send(
                usable_template(session, user, body.template),
                conv,
                user,
                channel=body.channel,
                body=text,
                subject=subject,
            )
            text, subject = filled.body, filled.subject
        if text is None:
            raise Invalid({"body": "is required (or give a template)"})
        out = Outgoing(
            body=text,
            channel=body.channel,
            subject=subject,
            idempotency_key=body.idempotency_key,
        )
        limits = Limits.of(caller.state.settings)
        if body.send_at is not None:
            scheduled = schedule_as(
                session,
                user,
                conversation_id,
                out,
                send_at=body.send_at,
                limits=limits,
                now=caller.now,
            )
            return JSONResponse(jsonable_encoder(scheduled), status_code=202)
        message, replayed = send_as(
            session,
            user,
            conversation_id,
            out,
            limiter=caller.state.send_limiter,
            limits=limits,
            now=caller.now,
        )
        result = MessageOut.of(message, show_deliveries=True)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.delete(
    "/messages/{message_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(403),
)
def delete_message(
    message_id: PathId,
    caller: CurrentUser,
    for_: Annotated[Literal["me", "everyone"], Query(alias="for")] = "me",
) -> Response:
    """Delete for me (hide it from my view) or for everyone (author only; kept for audit)."""
    with caller.write() as (session, user):
        delete_as(session, user, message_id, for_everyone=for_ == "everyone", now=caller.now)
    return Response(status_code=204)

"""Message history, sending and deleting (user token)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.auth.deps import Caller, CurrentUser
from jobchat.directory.models import UserKind
from jobchat.http_errors import error_responses
from jobchat.inputs import MAX_ID, PathId
from jobchat.messages.actions import Limits, sent_json
from jobchat.messages.history import history_page
from jobchat.messages.requests import delete_as
from jobchat.messages.schemas import MessageOut, MessagePage, SendMessageIn
from jobchat.plain_json import page_json
from jobchat.scheduling.posting import post_as
from jobchat.scheduling.requests import check_client_key
from jobchat.scheduling.schemas import ScheduledOut

_JSON = "application/json"

router = APIRouter(prefix="/api/v1", tags=["messages"], responses=error_responses(401, 404))


@router.get("/conversations/{conversation_id}/messages", response_model=MessagePage)
def list_messages(
    conversation_id: PathId,
    caller: CurrentUser,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A message id (next_cursor).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """History, newest page first; oldest first within a page; ``before`` pages back."""
    with caller.reading() as reading:
        connection = reading.connection
        kind = access.kind_of_member(connection, caller.user_id, conversation_id)
        items, next_cursor = history_page(
            connection,
            caller.user_id,
            conversation_id,
            staff=kind is UserKind.staff,
            before=before,
            limit=limit,
        )
    # Written as JSON from plain data, with no model per message and no second validation by
    # FastAPI (MessagePage stays its documented shape).
    return Response(page_json(items, next_cursor), media_type=_JSON)


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses={
        202: {"model": ScheduledOut, "description": "Scheduled for send_at."},
        **error_responses(409, 413, 422, 429),
    },
)
def send_message(conversation_id: PathId, body: SendMessageIn, caller: CurrentUser) -> Response:
    """Send in the app, by email or by SMS, now or at ``send_at`` (202), written or from a
    template. A retry with the same idempotency key is stored once and answered with what
    was stored (header ``Idempotent-Replayed: true``), even if the template or the scheduled
    message was edited since; keys starting ``scheduled-message:`` or ``jobchat-bulk:`` are
    the service's own (422)."""
    return answer_send(caller, conversation_id, body)


def answer_send(caller: Caller, conversation_id: int, body: SendMessageIn) -> Response:
    """The send route's work and answer, also run by ``jobchat.messages.fast_send``."""
    state = caller.state
    # A bad key is refused before any transaction (post_as checks it too, first thing).
    check_client_key(body.idempotency_key)

    def post(session: Session) -> tuple[str | ScheduledOut, bool]:
        # The caller's row comes with the conversation's and their membership's: one statement.
        user, conv, member = access.caller_in_conversation(session, caller.user_id, conversation_id)
        posted = post_as(
            session,
            user,
            conversation_id,
            body,
            limiter=state.send_limiter,
            limits=Limits.of(state.settings),
            max_scheduled=state.settings.max_scheduled_per_user,
            now=caller.now,
            accessed=(conv, member),
        )
        if posted.scheduled is not None:
            return posted.scheduled, posted.replayed
        assert posted.message is not None
        # Made in the transaction, which the message's row is loaded in.
        return sent_json(session, posted.message), posted.replayed

    if body.send_at is None:
        # A send now writes into this one conversation, in one transaction with the sends that
        # came meanwhile (group commit; on PostgreSQL, those whose conversations it can lock).
        result, replayed = state.db.write_grouped(post, concurrent_in=conversation_id)
    else:
        # A scheduled one counts the user's pending sends first: it has the database to itself.
        with state.db.write() as session:
            result, replayed = post(session)
    if isinstance(result, str):
        # The message's JSON, answered as it is: FastAPI would validate a MessageOut again
        # against response_model, on a trip through the thread pool.
        answer = Response(result, status_code=201, media_type=_JSON)
    else:
        answer = JSONResponse(jsonable_encoder(result), status_code=202)
    if replayed:
        answer.headers["Idempotent-Replayed"] = "true"
    return answer


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

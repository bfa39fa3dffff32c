"""The inbox, conversations, read state, the badge and the candidate manager (user token)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from jobchat import access
from jobchat.auth.deps import CurrentUser
from jobchat.conversations.actions import do_end_conversation, do_mark_read, do_start_conversation
from jobchat.conversations.context import ContextRefs
from jobchat.conversations.models import Kind
from jobchat.conversations.queries import (
    InboxFilter,
    InboxQuery,
    candidate_manager,
    unread_totals,
)
from jobchat.conversations.render import page_json, render_conversation, render_inbox
from jobchat.conversations.schemas import (
    CandidatePage,
    ConversationOut,
    ConversationPage,
    ReadIn,
    StartConversationIn,
    UnreadOut,
)
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId, QueryRef, QueryText

router = APIRouter(prefix="/api/v1", tags=["conversations"], responses=error_responses(401))

Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/conversations", response_model=ConversationPage, responses=error_responses(422))
def list_conversations(
    caller: CurrentUser,
    filter: InboxFilter = "all",
    kind: Kind | None = None,
    job: QueryRef = None,
    candidate: QueryRef = None,
    application: QueryRef = None,
    limit: Limit = 50,
    cursor: QueryText = None,
) -> Response:
    """The inbox: the caller's conversations, most recent activity first."""
    query = InboxQuery(
        filter=filter, kind=kind, job=job, candidate=candidate, application=application
    )
    with caller.reading() as reading:
        page = render_inbox(reading, caller.user_id, query, limit=limit, cursor=cursor)
    # The hottest read: written as JSON from plain data, with no model per conversation and no
    # second validation by FastAPI (ConversationPage stays its documented shape).
    return Response(page_json(page), media_type="application/json")


@router.post(
    "/conversations",
    response_model=ConversationOut,
    responses={
        200: {"description": "It already existed."},
        201: {"description": "Created."},
        **error_responses(403, 404, 422),
    },
)
def start_conversation(
    body: StartConversationIn, caller: CurrentUser, response: Response
) -> ConversationOut:
    """Open the one conversation of a kind and context, or reach it if it exists."""
    refs = ContextRefs(
        job=body.job,
        candidate=body.candidate,
        application=body.application,
        partner=body.partner,
        with_user=body.with_user,
    )
    with caller.write() as (session, user):
        context, existing = access.access_start(session, user, body.kind, refs)
        conv, member, created = do_start_conversation(
            session, actor=user, context=context, existing=existing, now=caller.now
        )
        out = render_conversation(session, user, conv, member)
    response.status_code = 201 if created else 200
    return out


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    responses=error_responses(404),
)
def get_conversation(conversation_id: PathId, caller: CurrentUser) -> ConversationOut:
    with caller.read() as (session, user):
        conv, member = access.access_conversation(session, user, conversation_id)
        return render_conversation(session, user, conv, member)


@router.post(
    "/conversations/{conversation_id}/read",
    response_model=ConversationOut,
    responses=error_responses(404, 422),
)
def mark_read(
    conversation_id: PathId, caller: CurrentUser, body: ReadIn | None = None
) -> ConversationOut:
    """Mark the conversation read, up to a message or entirely."""
    with caller.write() as (session, user):
        conv, member = access.access_conversation(session, user, conversation_id)
        do_mark_read(
            session, member=member, conv=conv, up_to=body.up_to if body else None, now=caller.now
        )
        return render_conversation(session, user, conv, member)


@router.post(
    "/conversations/{conversation_id}/end",
    response_model=ConversationOut,
    responses=error_responses(403, 404),
)
def end_conversation(conversation_id: PathId, caller: CurrentUser) -> ConversationOut:
    """End it: the candidate can no longer post until a staff member writes again."""
    with caller.write() as (session, user):
        conv, member = access.access_conversation(session, user, conversation_id)
        access.check_end(user, conv)
        do_end_conversation(session, actor=user, conv=conv, now=caller.now)
        return render_conversation(session, user, conv, member)


@router.get("/unread", response_model=UnreadOut)
def unread(caller: CurrentUser) -> UnreadOut:
    """The badge: how many conversations and messages are unread."""
    with caller.read() as (session, user):
        conversations, messages = unread_totals(session, user)
    return UnreadOut(conversations=conversations, messages=messages)


@router.get("/candidates", response_model=CandidatePage, responses=error_responses(403, 422))
def list_candidates(
    caller: CurrentUser,
    messaging: Literal["unread", "messaged"] | None = None,
    q: QueryText = None,
    limit: Limit = 50,
    cursor: QueryText = None,
) -> CandidatePage:
    """The candidate manager: candidates the caller may message, with their message state."""
    with caller.read() as (session, user):
        access.check_staff(user)
        items, next_cursor = candidate_manager(
            session, user, messaging=messaging, q=q, limit=limit, cursor=cursor
        )
    return CandidatePage(items=items, next_cursor=next_cursor)

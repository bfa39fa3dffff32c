"""A conversation's activity (user token): the lines of its history that are not messages."""

from __future__ import annotations

from fastapi import APIRouter

from jobchat import access
from jobchat.activity.queries import activity_between
from jobchat.activity.schemas import ActivityOut, ActivityPage
from jobchat.auth.deps import CurrentUser
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId

router = APIRouter(prefix="/api/v1", tags=["conversations"], responses=error_responses(401, 404))


@router.get("/conversations/{conversation_id}/activity", response_model=ActivityPage)
def list_activity(conversation_id: PathId, caller: CurrentUser) -> ActivityPage:
    """Every time the conversation was ended or reopened, oldest first. Each line names the
    message it follows (`after_message`), so a client interleaves it with the messages."""
    with caller.read() as (session, user):
        access.access_conversation(session, user, conversation_id)
        rows = activity_between(session, conversation_id, lowest=0, below=None)
        return ActivityPage(items=[ActivityOut.of(r) for r in rows])

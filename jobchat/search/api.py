"""GET /api/v1/search (user token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobchat.auth.deps import CurrentUser
from jobchat.http_errors import error_responses
from jobchat.inputs import MAX_ID, QueryRef, QueryText
from jobchat.search.queries import Filters, search
from jobchat.search.query import MAX_QUERY_CHARS
from jobchat.search.schemas import SearchPageOut

router = APIRouter(prefix="/api/v1", tags=["search"], responses=error_responses(401, 404, 422))


@router.get("/search", response_model=SearchPageOut)
def search_messages(
    caller: CurrentUser,
    q: Annotated[
        str,
        Query(
            description=f"Words, all required, any form of each (English stemming); common "
            f'words are ignored; "a phrase" in order; word* for a prefix (2+ letters). At most '
            f"{MAX_QUERY_CHARS} characters."
        ),
    ],
    conversation: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Only this conversation (404 if not yours)."),
    ] = None,
    job: Annotated[QueryRef, Query(description="Only conversations about this job.")] = None,
    candidate: Annotated[
        QueryRef, Query(description="Only conversations about this candidate.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    cursor: QueryText = None,
) -> SearchPageOut:
    """Messages of the caller's conversations matching ``q``: best matches first, then newest.
    Never a message deleted for everyone or deleted by the caller for themself. ``highlights``
    are [start, end) ranges of Python string indices (code points) in ``snippet``."""
    filters = Filters(conversation=conversation, job=job, candidate=candidate)
    with caller.read() as (session, user):
        page = search(session, user, q, filters, limit, cursor)
        return SearchPageOut.of(page, user)

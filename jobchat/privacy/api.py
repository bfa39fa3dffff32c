"""The privacy endpoints (integration key): the audit log, and a candidate's export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from jobchat.auth.deps import Integration, State
from jobchat.http_errors import error_responses
from jobchat.inputs import Moment, QueryText
from jobchat.privacy.models import AuditAction
from jobchat.privacy.queries import audit_page
from jobchat.privacy.schemas import AuditEntryOut, AuditPage

router = APIRouter(
    prefix="/api/v1",
    tags=["privacy"],
    dependencies=[Integration],
    responses=error_responses(401, 403),
)


@router.get("/audit", response_model=AuditPage, responses=error_responses(422))
def list_audit(
    state: State,
    action: Annotated[AuditAction | None, Query(description="Only entries of this action.")] = None,
    since: Annotated[
        Moment | None,
        Query(
            description="Only entries at or after this time (with its offset, like "
            "2026-01-05T09:00:00Z)."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Entries per page.")] = 50,
    cursor: Annotated[QueryText, Query(description="`next_cursor` of the page before.")] = None,
) -> AuditPage:
    """The audit log, newest first: deletions for everyone, conversations ended and reopened,
    exports and erasures, deactivations, token and integration key revocations, and texting
    opt-outs and opt-ins; each with who did it (`actor`), to what or whom (`subject`), when,
    and from which address. People are named by their external ids, never by name; `details`
    holds counts and ids, never what anyone wrote."""
    with state.db.read() as session:
        rows, next_cursor = audit_page(
            session, action=action, since=since, limit=limit, cursor=cursor
        )
        return AuditPage(items=[AuditEntryOut.of(row) for row in rows], next_cursor=next_cursor)

"""The privacy endpoints (integration key): the audit log, and a candidate's export."""

from __future__ import annotations

import itertools
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from jobchat.auth.deps import Integration, IntegrationCaller, State
from jobchat.http_errors import error_responses
from jobchat.inputs import Moment, PathRef, QueryText
from jobchat.privacy.export import do_record_export, export_document
from jobchat.privacy.models import AuditAction
from jobchat.privacy.queries import audit_page
from jobchat.privacy.schemas import AuditEntryOut, AuditPage, CandidateExport

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


@router.get(
    "/candidates/{ext_id}/export",
    # The model documents the answer; the route streams it (FastAPI passes a Response through).
    response_model=CandidateExport,
    responses={200: {"description": "The candidate's data."}, **error_responses(404, 422)},
)
def export_candidate(ext_id: PathRef, state: State, key: IntegrationCaller) -> StreamingResponse:
    """Everything jobchat holds about a candidate, for their right of access: the profile, the
    history of their texting consent, every conversation whose context is them (staff-only
    ones, such as agency threads, included and marked `staff_only`) with all its messages
    (deleted ones too, marked, since their words are still stored), their own messages in
    other conversations, and the emails and texts sent to them and received from them. The
    export is itself in the audit log (`candidate.exported`). Unknown candidate: 404.

    The document is streamed as it is read: a response cut short (the connection or the
    database lost midway) is not valid JSON, and must be asked for again."""
    with state.db.write() as session:
        now = state.clock.now()
        candidate_id = do_record_export(session, ext_id, actor=key.party, now=now)
    document = export_document(state.db, candidate_id, now)
    # Its first piece is read here, before the answer starts: a database that cannot be read
    # is still a 503 then, not a 200 with nothing in it.
    first = next(document)
    return StreamingResponse(itertools.chain([first], document), media_type="application/json")

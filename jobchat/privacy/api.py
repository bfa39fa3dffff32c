"""The privacy endpoints (integration key): the audit log, a candidate's export and erasure."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from jobchat.app_state import AppState
from jobchat.auth.api import announce_revoked
from jobchat.auth.deps import Integration, IntegrationCaller, State
from jobchat.directory.models import UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.errors import NotFound
from jobchat.http_errors import error_responses
from jobchat.inputs import Moment, PathRef, QueryText
from jobchat.privacy.audit import Party
from jobchat.privacy.erasure import COUNTED, do_erase_candidate, was_erased
from jobchat.privacy.erasure_schemas import ErasedCounts, ErasureOut
from jobchat.privacy.export import do_record_export, export_document
from jobchat.privacy.models import AuditAction
from jobchat.privacy.queries import audit_page
from jobchat.privacy.schemas import AuditEntryOut, AuditPage, CandidateExport
from jobchat.privacy.scrub import checkpoint
from jobchat.sms.spool import Spool

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


# --- erasure -------------------------------------------------------------------------------


def _erase(state: AppState, ext_id: str, actor: Party) -> tuple[dict[str, int], int | None]:
    with state.db.write() as session:
        candidate = user_by_ext(session, UserKind.candidate, ext_id)
        if candidate is None:
            if was_erased(session, ext_id):
                return dict.fromkeys(COUNTED, 0), None
            raise NotFound("There is no candidate with that id.")
        user_id, phone = candidate.id, candidate.phone
        counts = do_erase_candidate(session, candidate, actor=actor, now=state.clock.now())
    # Committed: what was set aside on disk from their number goes too (jobchat.sms.spool).
    if phone:
        Spool(Path(state.settings.spool_dir)).forget_number(phone)
    checkpoint(state.db)
    return counts, user_id


@router.post(
    "/candidates/{ext_id}/erase",
    response_model=ErasureOut,
    responses={
        200: {"description": "Erased; the counts of what went."},
        **error_responses(404),
    },
)
async def erase_candidate(
    ext_id: PathRef, request: Request, caller: IntegrationCaller
) -> ErasureOut:
    """Erase a candidate: their name, email and phone number (the person itself: a later
    upsert of the same id makes a new candidate), every message of the conversations about
    them (application, case, candidate_partner, agency; each left empty, with nobody in it)
    and every message they wrote elsewhere, their files, email and SMS records, deliveries,
    scheduled sends, queued work, real-time events, search entries, push subscriptions and
    sign-in credentials. All at once or not at all. What stays: an audit entry
    `candidate.erased` (who, when, the counts), and the opt-out of their phone number if it
    texted STOP (as a keyed hash: a later `sms_consent: true` for that number does not override
    it). Other members' open pages drop the conversations. Erasing an id erased before answers
    200 with zero counts; an id never known, 404."""
    state: AppState = request.app.state.jobchat
    counts, user_id = await run_in_threadpool(_erase, state, ext_id, caller.party)
    if user_id is not None:
        await announce_revoked(request.app, state, user_id, None)
    return ErasureOut(
        candidate=ext_id,
        already_erased=user_id is None,
        erased=ErasedCounts(**counts),
    )

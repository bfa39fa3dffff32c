"""Integration upserts (integration key) and the signed-in user's own profile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jobchat.app_state import AppState
from jobchat.auth.api import announce_revoked
from jobchat.auth.deps import CurrentUser, Integration, IntegrationCaller, IntegrationKey, State
from jobchat.directory.actions import (
    do_deactivate_person,
    do_update_preferences,
    do_upsert_application,
    do_upsert_candidate,
    do_upsert_job,
    do_upsert_organization,
    do_upsert_staff,
)
from jobchat.directory.models import UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.directory.schemas import (
    ApplicationIn,
    ApplicationOut,
    CandidateIn,
    JobIn,
    JobOut,
    OrganizationIn,
    OrganizationOut,
    PreferencesIn,
    StaffIn,
    UserOut,
)
from jobchat.errors import NotFound
from jobchat.http_errors import error_responses
from jobchat.inputs import PathRef
from jobchat.sms.queries import number_opt_out

integration = APIRouter(
    prefix="/api/v1",
    tags=["integration"],
    dependencies=[Integration],
    responses=error_responses(401, 403, 409, 413, 422),
)
me = APIRouter(prefix="/api/v1", tags=["me"], responses=error_responses(401))

ExtId = PathRef
T = TypeVar("T")
Out = TypeVar("Out")


def _upsert(
    state: State,
    response: Response,
    action: Callable[[Session, datetime], tuple[T, bool]],
    render: Callable[[T], Out],
) -> Out:
    with state.db.write() as session:
        # The time is read once the writer lock is held, so it follows commit order.
        obj, created = action(session, state.clock.now())
        out = render(obj)
    response.status_code = 201 if created else 200
    return out


_UPSERT: dict[int | str, dict[str, Any]] = {
    200: {"description": "Updated."},
    201: {"description": "Created."},
}


@integration.put("/organizations/{ext_id}", response_model=OrganizationOut, responses=_UPSERT)
def put_organization(
    ext_id: ExtId, body: OrganizationIn, state: State, response: Response
) -> OrganizationOut:
    return _upsert(
        state,
        response,
        lambda s, _now: do_upsert_organization(s, ext_id, body),
        OrganizationOut.of,
    )


@integration.put("/users/{ext_id}", response_model=UserOut, responses=_UPSERT)
def put_user(ext_id: ExtId, body: StaffIn, state: State, response: Response) -> UserOut:
    region = state.settings.default_phone_region
    return _upsert(
        state,
        response,
        lambda s, now: do_upsert_staff(s, ext_id, body, region=region, now=now),
        UserOut.of,
    )


@integration.put("/candidates/{ext_id}", response_model=UserOut, responses=_UPSERT)
def put_candidate(
    ext_id: ExtId, body: CandidateIn, state: State, response: Response, key: IntegrationCaller
) -> UserOut:
    """`sms_consent: true` is not taken for a number that texted STOP: the answer shows the
    consent as it really is, and `sms_number_opted_out` says why."""
    region = state.settings.default_phone_region
    quiet = state.settings.candidate_quiet_window

    def upsert(s: Session, now: datetime) -> tuple[UserOut, bool]:
        user, created = do_upsert_candidate(
            s, ext_id, body, region=region, now=now, quiet=quiet, by=key.party
        )
        opted_out = number_opt_out(s, user.phone) is not None
        return UserOut.of(user, sms_number_opted_out=opted_out), created

    return _upsert(state, response, upsert, lambda out: out)


@integration.put("/jobs/{ext_id}", response_model=JobOut, responses=_UPSERT)
def put_job(ext_id: ExtId, body: JobIn, state: State, response: Response) -> JobOut:
    return _upsert(
        state, response, lambda s, now: do_upsert_job(s, ext_id, body, now=now), JobOut.of
    )


@integration.put("/applications/{ext_id}", response_model=ApplicationOut, responses=_UPSERT)
def put_application(
    ext_id: ExtId, body: ApplicationIn, state: State, response: Response
) -> ApplicationOut:
    return _upsert(
        state,
        response,
        lambda s, now: do_upsert_application(s, ext_id, body, now=now),
        ApplicationOut.of,
    )


def _deactivate(state: AppState, kind: UserKind, ext_id: str, key: IntegrationKey) -> int:
    with state.db.write() as session:
        user = user_by_ext(session, kind, ext_id)
        if user is None:
            raise NotFound(f"There is no {kind.value} with that id.")
        do_deactivate_person(session, user, now=state.clock.now(), actor=key.party)
        return user.id


async def _deactivate_and_tell(
    request: Request, kind: UserKind, ext_id: str, key: IntegrationKey
) -> Response:
    state: AppState = request.app.state.jobchat
    user_id = await run_in_threadpool(_deactivate, state, kind, ext_id, key)
    # Every process forgets their tokens and closes their sockets before we answer.
    await announce_revoked(request.app, state, user_id, None)
    return Response(status_code=204)


_DEACTIVATE: dict[int | str, dict[str, Any]] = {
    204: {"description": "Deactivated (also when they were already)."},
    **error_responses(404),
}


@integration.delete(
    "/users/{ext_id}", status_code=204, response_class=Response, responses=_DEACTIVATE
)
async def delete_user(ext_id: ExtId, request: Request, key: IntegrationCaller) -> Response:
    """Deactivate a staff user: they can no longer sign in or call the API (their tokens,
    sessions, sign-in links and open sockets end at once) and they leave every conversation;
    what they wrote stays, under their name. A later PUT reactivates them."""
    return await _deactivate_and_tell(request, UserKind.staff, ext_id, key)


@integration.delete(
    "/candidates/{ext_id}", status_code=204, response_class=Response, responses=_DEACTIVATE
)
async def delete_candidate(ext_id: ExtId, request: Request, key: IntegrationCaller) -> Response:
    """Deactivate a candidate, as for staff users: no more sign-in, emails or texts, and no
    membership; their messages stay. A later PUT reactivates them."""
    return await _deactivate_and_tell(request, UserKind.candidate, ext_id, key)


@me.get("/me", response_model=UserOut)
def get_me(caller: CurrentUser) -> UserOut:
    with caller.read() as (_session, user):
        return UserOut.of(user)


@me.patch("/me", response_model=UserOut)
def patch_me(body: PreferencesIn, caller: CurrentUser) -> UserOut:
    with caller.write() as (session, user):
        do_update_preferences(session, user, body, now=caller.now)
        return UserOut.of(user)

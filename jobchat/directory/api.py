"""Integration upserts (integration key) and the signed-in user's own profile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from jobchat.auth.deps import CurrentUser, Integration, State
from jobchat.directory.actions import (
    do_update_preferences,
    do_upsert_application,
    do_upsert_candidate,
    do_upsert_job,
    do_upsert_organization,
    do_upsert_staff,
)
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
def put_candidate(ext_id: ExtId, body: CandidateIn, state: State, response: Response) -> UserOut:
    """`sms_consent: true` is not taken for a number that texted STOP: the answer shows the
    consent as it really is, and `sms_number_opted_out` says why."""
    region = state.settings.default_phone_region

    def upsert(s: Session, now: datetime) -> tuple[UserOut, bool]:
        user, created = do_upsert_candidate(s, ext_id, body, region=region, now=now)
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


@me.get("/me", response_model=UserOut)
def get_me(caller: CurrentUser) -> UserOut:
    with caller.read() as (_session, user):
        return UserOut.of(user)


@me.patch("/me", response_model=UserOut)
def patch_me(body: PreferencesIn, caller: CurrentUser) -> UserOut:
    with caller.write() as (session, user):
        do_update_preferences(session, user, body)
        return UserOut.of(user)

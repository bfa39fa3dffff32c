"""Issuing user tokens and one-time sign-in links (integration key)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from pydantic import BaseModel

from jobchat.auth.actions import do_create_credential
from jobchat.auth.deps import Integration, Now, State
from jobchat.auth.models import CredentialKind
from jobchat.directory.models import UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.errors import NotFound
from jobchat.http_errors import error_responses
from jobchat.inputs import PathRef

router = APIRouter(
    prefix="/api/v1",
    tags=["integration"],
    dependencies=[Integration],
    responses=error_responses(401, 403, 404),
)
ExtId = PathRef


class TokenOut(BaseModel):
    token: str


class LoginLinkOut(BaseModel):
    url: str


def _token(state: State, now: Now, kind: UserKind, ext_id: str) -> TokenOut:
    with state.db.write() as session:
        user = user_by_ext(session, kind, ext_id)
        if user is None:
            raise NotFound(f"There is no {kind.value} with that id.")
        return TokenOut(
            token=do_create_credential(session, user=user, kind=CredentialKind.token, now=now)
        )


def _login_link(state: State, now: Now, kind: UserKind, ext_id: str) -> LoginLinkOut:
    lifetime = timedelta(minutes=state.settings.login_link_minutes)
    with state.db.write() as session:
        user = user_by_ext(session, kind, ext_id)
        if user is None:
            raise NotFound(f"There is no {kind.value} with that id.")
        secret = do_create_credential(
            session, user=user, kind=CredentialKind.login_link, now=now, lifetime=lifetime
        )
    return LoginLinkOut(url=login_url(state.settings.public_url, secret))


def login_url(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}/login/{secret}"


@router.post("/users/{ext_id}/tokens", status_code=201, response_model=TokenOut)
def user_token(ext_id: ExtId, state: State, now: Now) -> TokenOut:
    """A bearer token that acts as this staff user."""
    return _token(state, now, UserKind.staff, ext_id)


@router.post("/candidates/{ext_id}/tokens", status_code=201, response_model=TokenOut)
def candidate_token(ext_id: ExtId, state: State, now: Now) -> TokenOut:
    """A bearer token that acts as this candidate."""
    return _token(state, now, UserKind.candidate, ext_id)


@router.post("/users/{ext_id}/login-links", status_code=201, response_model=LoginLinkOut)
def user_login_link(ext_id: ExtId, state: State, now: Now) -> LoginLinkOut:
    """A one-time, short-lived sign-in link for this staff user."""
    return _login_link(state, now, UserKind.staff, ext_id)


@router.post("/candidates/{ext_id}/login-links", status_code=201, response_model=LoginLinkOut)
def candidate_login_link(ext_id: ExtId, state: State, now: Now) -> LoginLinkOut:
    """A one-time, short-lived sign-in link for this candidate."""
    return _login_link(state, now, UserKind.candidate, ext_id)

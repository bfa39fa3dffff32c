"""User tokens (issued, listed, revoked) and one-time sign-in links (integration key)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jobchat.access import check_active
from jobchat.app_state import AppState
from jobchat.auth.actions import do_create_login_link, do_issue_credential, do_revoke_token
from jobchat.auth.deps import Integration, IntegrationCaller, IntegrationKey, Now, State
from jobchat.auth.embed import is_local_path
from jobchat.auth.models import Credential, CredentialKind
from jobchat.auth.queries import tokens_of
from jobchat.directory.models import User, UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.errors import Invalid, NotFound
from jobchat.http_errors import error_responses
from jobchat.inputs import Line, PathId, PathRef

router = APIRouter(
    prefix="/api/v1",
    tags=["integration"],
    dependencies=[Integration],
    responses=error_responses(401, 403, 404),
)
ExtId = PathRef
MAX_TOKEN_DAYS = 3650


class TokenIn(BaseModel):
    """Both optional; no body at all issues a token for ``JOBCHAT_TOKEN_DAYS`` days."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[Line, Field(max_length=200)] | None = Field(
        default=None, description="A label of yours, shown when the person's tokens are listed."
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description="Lifetime in days (default JOBCHAT_TOKEN_DAYS, 90).",
    )


class TokenOut(BaseModel):
    id: int
    token: str = Field(description="The secret: shown this once, stored only as a digest.")
    name: str | None
    expires_at: datetime | None


class TokenInfo(BaseModel):
    """A token as listed: never its secret. (There is no ``last_used_at``: recording each use
    would make every request a write.)"""

    id: int
    name: str | None
    created_at: datetime
    expires_at: datetime | None = Field(
        description="Null only for tokens issued before tokens expired: they never do."
    )
    revoked_at: datetime | None

    @classmethod
    def of(cls, cred: Credential) -> TokenInfo:
        return cls(
            id=cred.id,
            name=cred.name,
            created_at=cred.created_at,
            expires_at=cred.expires_at,
            revoked_at=cred.revoked_at,
        )


class TokenList(BaseModel):
    items: list[TokenInfo]


class LoginLinkIn(BaseModel):
    """Both optional; no body at all is a link to the person's start page, for a whole window."""

    model_config = ConfigDict(extra="forbid")
    next: str | None = Field(
        default=None,
        max_length=2000,
        description="Where the browser lands once signed in: a path of this site, such as "
        "/conversations/42 or /inbox (no scheme or host; 422 otherwise). Default: the start "
        "page (the inbox for staff, the portal for candidates).",
        examples=["/inbox"],
    )
    embed: bool = Field(
        default=False,
        strict=True,  # true or false, not "yes" or 1
        description="For a frame in your pages (put the url in an iframe's src): the session "
        "it opens may be framed by the origins in JOBCHAT_EMBED_ORIGINS (422 while that is "
        "empty), its pages show no header of their own, and its cookie is SameSite=None; "
        "Secure; Partitioned so browsers that block third-party cookies keep it.",
    )

    @field_validator("next")
    @classmethod
    def _local(cls, value: str | None) -> str | None:
        if value is not None and not is_local_path(value):
            raise ValueError("must be a path of this site, such as /inbox (no scheme or host)")
        return value


class LoginLinkOut(BaseModel):
    url: str = Field(description="The one-time sign-in link (JOBCHAT_LOGIN_LINK_MINUTES).")


def _person(session: Session, kind: UserKind, ext_id: str) -> User:
    user = user_by_ext(session, kind, ext_id)
    if user is None:
        raise NotFound(f"There is no {kind.value} with that id.")
    return user


def _token(state: AppState, kind: UserKind, ext_id: str, body: TokenIn | None) -> TokenOut:
    body = body or TokenIn()
    days = body.expires_in_days or state.settings.token_days
    with state.db.write() as session:
        user = _person(session, kind, ext_id)
        check_active(user)
        cred, secret = do_issue_credential(
            session,
            user_id=user.id,
            kind=CredentialKind.token,
            now=state.clock.now(),
            lifetime=timedelta(days=days),
            name=body.name or None,
        )
        return TokenOut(id=cred.id, token=secret, name=cred.name, expires_at=cred.expires_at)


def _tokens(state: AppState, kind: UserKind, ext_id: str) -> TokenList:
    with state.db.read() as session:
        user = _person(session, kind, ext_id)
        return TokenList(items=[TokenInfo.of(cred) for cred in tokens_of(session, user.id)])


def _login_link(
    state: AppState, now: datetime, kind: UserKind, ext_id: str, body: LoginLinkIn | None
) -> LoginLinkOut:
    body = body or LoginLinkIn()
    if body.embed and not state.settings.frame_origins:
        raise Invalid(
            {"embed": "embedding is off: JOBCHAT_EMBED_ORIGINS names no origin that may frame"},
            code="embedding_off",
        )
    lifetime = timedelta(minutes=state.settings.login_link_minutes)
    with state.db.write() as session:
        user = _person(session, kind, ext_id)
        check_active(user)
        secret = do_create_login_link(
            session, user=user, now=now, lifetime=lifetime, embed=body.embed
        )
    url = login_url(state.settings.public_url, secret)
    return LoginLinkOut(url=f"{url}?{urlencode({'next': body.next})}" if body.next else url)


def login_url(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}/login/{secret}"


_ISSUE = error_responses(409, 422)


@router.post("/users/{ext_id}/tokens", status_code=201, response_model=TokenOut, responses=_ISSUE)
def user_token(ext_id: ExtId, state: State, body: TokenIn | None = None) -> TokenOut:
    """A bearer token that acts as this staff user (409 ``user_deactivated`` for one who is
    deactivated)."""
    return _token(state, UserKind.staff, ext_id, body)


@router.post(
    "/candidates/{ext_id}/tokens", status_code=201, response_model=TokenOut, responses=_ISSUE
)
def candidate_token(ext_id: ExtId, state: State, body: TokenIn | None = None) -> TokenOut:
    """A bearer token that acts as this candidate (409 ``user_deactivated`` for one who is
    deactivated)."""
    return _token(state, UserKind.candidate, ext_id, body)


@router.get("/users/{ext_id}/tokens", response_model=TokenList)
def user_tokens(ext_id: ExtId, state: State) -> TokenList:
    """This staff user's tokens, revoked and expired ones included; never their secrets."""
    return _tokens(state, UserKind.staff, ext_id)


@router.get("/candidates/{ext_id}/tokens", response_model=TokenList)
def candidate_tokens(ext_id: ExtId, state: State) -> TokenList:
    """This candidate's tokens, revoked and expired ones included; never their secrets."""
    return _tokens(state, UserKind.candidate, ext_id)


def _revoke(state: AppState, token_id: int, key: IntegrationKey) -> int:
    with state.db.write() as session:
        now = state.clock.now()
        cred = do_revoke_token(session, credential_id=token_id, now=now, actor=key.party)
        if cred is None:
            raise NotFound("There is no token with that id.")
        return cred.user_id


async def announce_revoked(
    app: FastAPI, state: AppState, user_id: int, credential_id: int | None
) -> None:
    """Tell every server process, before the revoking request is answered, that a credential
    of ``user_id`` (all of them for None) has ended: each forgets the user's cached tokens and
    closes the sockets concerned. The ``access.revoked`` event the action stored reaches them
    too, at their next read of the event table, should this message be lost."""
    state.tokens.forget_user(user_id)
    hub = getattr(app.state, "hub", None)  # none before the app has started
    if hub is not None:
        await hub.announce_revoked(user_id, credential_id)


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(422),
)
async def revoke_token(
    token_id: PathId, request: Request, state: State, key: IntegrationCaller
) -> Response:
    """Revoke a user token: from the answer on it gets 401 on every server process, and the
    sockets opened with it are closed (code 4401). Revoking one already revoked answers 204
    again and keeps its first ``revoked_at``; an unknown id (or one that is not a user token)
    is 404."""
    user_id = await run_in_threadpool(_revoke, state, token_id, key)
    # Every process is told before we answer, so the token fails at once wherever it is used.
    await announce_revoked(request.app, state, user_id, token_id)
    return Response(status_code=204)


@router.post(
    "/users/{ext_id}/login-links",
    status_code=201,
    response_model=LoginLinkOut,
    responses=_ISSUE,
)
def user_login_link(
    ext_id: ExtId, state: State, now: Now, body: LoginLinkIn | None = None
) -> LoginLinkOut:
    """A one-time, short-lived sign-in link for this staff user; with ``embed``, for a frame
    in your pages (409 ``user_deactivated`` for one who is deactivated)."""
    return _login_link(state, now, UserKind.staff, ext_id, body)


@router.post(
    "/candidates/{ext_id}/login-links",
    status_code=201,
    response_model=LoginLinkOut,
    responses=_ISSUE,
)
def candidate_login_link(
    ext_id: ExtId, state: State, now: Now, body: LoginLinkIn | None = None
) -> LoginLinkOut:
    """A one-time, short-lived sign-in link for this candidate; with ``embed``, for a frame
    in your pages (409 ``user_deactivated`` for one who is deactivated)."""
    return _login_link(state, now, UserKind.candidate, ext_id, body)

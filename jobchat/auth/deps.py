"""FastAPI dependencies that say who is calling."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jobchat.app_state import AppState
from jobchat.auth.csrf import CSRF_HEADER, csrf_ok
from jobchat.auth.models import CredentialKind
from jobchat.auth.queries import (
    credential_for,
    integration_key,
    is_api_key,
    token_owner,
    user_for,
)
from jobchat.db.loaded import ByKey
from jobchat.db.prepared import connection_of
from jobchat.db.reading import Reading
from jobchat.directory.models import User
from jobchat.errors import Forbidden, Unauthorized
from jobchat.privacy.audit import Party
from jobchat.privacy.models import PartyType

SESSION_COOKIE = "jobchat_session"
_bearer = HTTPBearer(auto_error=False, description="An integration key or a user token.")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


# The dependencies that do no I/O are coroutines: FastAPI runs a plain function dependency on
# the thread pool, and each of those hops cost a request about as much CPU as a SQL statement.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.jobchat
    return state


State = Annotated[AppState, Depends(get_state)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_now(state: State) -> datetime:
    return state.clock.now()


Now = Annotated[datetime, Depends(get_now)]


def same_origin(headers: Mapping[str, str], public_url: str) -> bool:
    """Cookie-authenticated writes, and sockets, must come from our own pages (CSRF, CSWSH)."""
    origin = headers.get("origin") or headers.get("referer")
    if origin is None:
        return True  # not a browser cross-site request: browsers send Origin on those
    allowed = {urlsplit(public_url).netloc, headers.get("host", "")}
    return urlsplit(origin).netloc in allowed


@dataclass(frozen=True)
class Caller:
    """The signed-in user of a request, reloaded inside each transaction a route opens."""

    state: AppState
    user_id: int

    @property
    def now(self) -> datetime:
        """The time, read when asked. Read it inside ``write()``: a request that waited for the
        writer lock then stamps a later time than the one that committed before it."""
        return self.state.clock.now()

    @contextmanager
    def read(self) -> Iterator[tuple[Session, User]]:
        with self.state.db.read() as session:
            yield session, caller_row(session, self.user_id)

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        """A read on a bare connection (``Database.reading``), without the caller's row, for
        the hottest reads, which need only their id (and check anything else they need
        themselves, as ``access.kind_of_member`` does): loading the row was one statement of
        every inbox and history page."""
        with self.state.db.reading() as reading:
            yield reading

    @contextmanager
    def write(self, *, concurrent_in: int | None = None) -> Iterator[tuple[Session, User]]:
        """A write transaction; ``concurrent_in``: see ``Database.write``."""
        with self.state.db.write(concurrent_in=concurrent_in) as session:
            yield session, caller_row(session, self.user_id)


_USERS = ByKey(User)


def caller_row(session: Session, user_id: int) -> User:
    """The signed-in user's row, as ``session.get_one`` gives it (``jobchat.db.loaded``: every
    request loads one, and the ORM's way cost a tenth of an inbox page)."""
    user = _USERS.get(session, user_id)
    if user is None:
        session.get_one(User, user_id)  # raises as it always has for a row that is gone
    assert user is not None
    return user


async def require_user(request: Request, bearer: Bearer) -> Caller:
    # The state and the time are read here rather than taken as the State and Now dependencies:
    # FastAPI solves each dependency of every authenticated request (building, hashing and
    # caching its key), which cost more than the two attribute reads they stand for.
    state: AppState = request.app.state.jobchat
    now = state.clock.now()
    if bearer is not None:
        # Most calls come with a token this process has just seen: answered on the event loop,
        # with no read transaction and no trip through the thread pool.
        user_id = state.tokens.user_id(bearer.credentials, now)
        if user_id is not None:
            return Caller(state, user_id)
    return await run_in_threadpool(_look_up_user, request, state, bearer, now)


def _look_up_user(
    request: Request, state: AppState, bearer: HTTPAuthorizationCredentials | None, now: datetime
) -> Caller:
    generation = state.tokens.generation
    with state.db.read() as session:
        if bearer is not None:
            caller = _token_owner(
                state, connection_of(session), bearer.credentials, now, generation
            )
            if caller is not None:
                return caller
            if is_api_key(session, bearer.credentials, state.settings.api_key):
                raise Forbidden(
                    "The integration key cannot read or write conversations; use a user token.",
                    code="user_token_required",
                )
            raise Unauthorized("The bearer token is not valid.")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None:
            user = user_for(session, cookie, (CredentialKind.session,), now)
            if user is not None:
                if request.method in _UNSAFE:
                    check_cookie_write(request, state, cookie)
                return Caller(state, user.id)
            raise Unauthorized("Your session has ended; sign in again.")
    raise Unauthorized("Sign in, or send Authorization: Bearer <token>.")


def look_up_token(state: AppState, secret: str, now: datetime) -> Caller | None:
    """The caller a user token stands for, looked up in the database (and remembered, as
    ``require_user`` does); None when it is not a live user token (``require_user`` says why)."""
    generation = state.tokens.generation
    # On a bare connection (Database.reading): the lookup is one prepared statement, and a
    # session around it cost more than the statement (about 2% of a send at one sender on
    # PostgreSQL, where every token is looked up again after the cache's 5 s).
    with state.db.reading() as reading:
        return _token_owner(state, reading.connection, secret, now, generation)


def _token_owner(
    state: AppState, connection: Connection, secret: str, now: datetime, generation: int
) -> Caller | None:
    owner = token_owner(connection, secret, now)
    if owner is None:
        return None
    state.tokens.remember(secret, *owner, generation=generation)
    return Caller(state, owner[0])


def request_credential(request: Request, session: Session, now: datetime) -> int | None:
    """The id of the live credential (a user token, else the session cookie) a request came
    with; None for none (an integration key). For what should end when that sign-in does."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        cred = credential_for(session, secret.strip(), (CredentialKind.token,), now)
        return cred.id if cred is not None else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        cred = credential_for(session, cookie, (CredentialKind.session,), now)
        return cred.id if cred is not None else None
    return None


def check_cookie_write(request: Request, state: AppState, cookie: str) -> None:
    """A write made with the session cookie must come from one of our pages: the same origin
    (which browsers always state on cross-site requests) and the session's CSRF token, in the
    X-CSRF-Token header from our scripts or the ``csrf`` field of our forms."""
    if not same_origin(request.headers, state.settings.public_url):
        raise Forbidden("Cross-site request refused.", code="cross_site")
    if not csrf_ok(cookie, request.headers.get(CSRF_HEADER)):
        raise Forbidden(
            "The request lacks this session's CSRF token (the X-CSRF-Token header); "
            "reload the page and try again.",
            code="csrf_failed",
        )


@dataclass(frozen=True)
class IntegrationKey:
    """The integration key a request came with: what the audit log names as its actor. ``id``
    is None for the key configured with JOBCHAT_API_KEY (which has no row)."""

    id: int | None
    name: str

    @property
    def party(self) -> Party:
        return Party(PartyType.integration, self.id, self.name)


def require_integration(state: State, bearer: Bearer, now: Now) -> IntegrationKey:
    if bearer is None:
        raise Unauthorized("Send Authorization: Bearer <integration key>.")
    with state.db.read() as session:
        key = integration_key(session, bearer.credentials, state.settings.api_key)
        if key is not None:
            return IntegrationKey(*key)
        if user_for(session, bearer.credentials, (CredentialKind.token,), now) is not None:
            raise Forbidden(
                "This endpoint is for the integration key, not a user token.",
                code="integration_key_required",
            )
    raise Unauthorized("The bearer token is not valid.")


def user_for_socket(
    state: AppState,
    headers: Mapping[str, str],
    query_token: str | None,
    cookies: Mapping[str, str],
) -> tuple[User, int]:
    """Who opens a stream socket, and the id of the credential they opened it with (revoking
    that credential closes the socket): a bearer token in the header or in ``?token=``
    (browsers cannot set headers on a WebSocket), or the session cookie from a page of our own
    origin."""
    now = state.clock.now()
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else None
    token = token or query_token
    with state.db.read() as session:
        if token:
            cred = credential_for(session, token, (CredentialKind.token,), now)
            if cred is not None:
                return cred.user, cred.id
            if is_api_key(session, token, state.settings.api_key):
                raise Forbidden(
                    "The integration key has no event stream; use a user token.",
                    code="user_token_required",
                )
            raise Unauthorized("The token is not valid.")
        cookie = cookies.get(SESSION_COOKIE)
        if cookie is not None:
            if not same_origin(headers, state.settings.public_url):
                raise Forbidden("Cross-site socket refused.", code="cross_site")
            cred = credential_for(session, cookie, (CredentialKind.session,), now)
            if cred is not None:
                return cred.user, cred.id
            raise Unauthorized("Your session has ended; sign in again.")
    raise Unauthorized("Sign in, or send Authorization: Bearer <token> or ?token=<token>.")


CurrentUser = Annotated[Caller, Depends(require_user)]
Integration = Depends(require_integration)
# The same check as a route's parameter, for a route that names the key (FastAPI runs it once
# per request, shared with the router's ``Integration``).
IntegrationCaller = Annotated[IntegrationKey, Depends(require_integration)]

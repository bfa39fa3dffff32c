"""Who is looking at a page: the session cookie's user, and the CSRF check of our forms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jobchat.auth.csrf import csrf_ok, csrf_token
from jobchat.auth.deps import SESSION_COOKIE, Caller, State, same_origin
from jobchat.auth.embed import is_embed_session
from jobchat.auth.models import CredentialKind
from jobchat.auth.queries import user_for
from jobchat.directory.models import User
from jobchat.errors import AppError, Forbidden


class SignInRequired(AppError):
    """No session (or an ended one): the page answers with how to sign in."""

    status = 401
    code = "unauthorized"

    def __init__(self, path: str) -> None:
        super().__init__("Sign in with the sign-in link you were sent.")
        self.path = path


@dataclass(frozen=True)
class Viewer:
    caller: Caller
    csrf: str
    # Signed in by an embed link, inside the ATS's frame: the pages show no header of their own.
    embedded: bool = False

    @contextmanager
    def read(self) -> Iterator[tuple[Session, User]]:
        with self.caller.read() as pair:
            yield pair

    @contextmanager
    def write(self) -> Iterator[tuple[Session, User]]:
        with self.caller.write() as pair:
            yield pair


def _signed_in(request: Request, state: State) -> Viewer:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with state.db.read() as session:
            user = user_for(session, cookie, (CredentialKind.session,), state.clock.now())
            if user is not None:
                return Viewer(Caller(state, user.id), csrf_token(cookie), is_embed_session(cookie))
    raise SignInRequired(request.url.path)


async def page_viewer(request: Request, state: State) -> Viewer:
    return await run_in_threadpool(_signed_in, request, state)


async def form_viewer(
    request: Request, state: State, csrf: Annotated[str | None, Form()] = None
) -> Viewer:
    """The signed-in user of a form post from one of our own pages (CSRF-checked)."""
    viewer = await page_viewer(request, state)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not same_origin(request.headers, state.settings.public_url):
        raise Forbidden("Cross-site request refused.", code="cross_site")
    if not csrf_ok(cookie, csrf):
        raise Forbidden(
            "This form has expired or did not come from jobchat; reload the page and try again.",
            code="csrf_failed",
        )
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
FormViewer = Annotated[Viewer, Depends(form_viewer)]

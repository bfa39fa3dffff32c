"""Signing in and out, the start page, and the pages shown when something is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobchat.auth.actions import do_end_session, do_redeem_login_link
from jobchat.auth.deps import SESSION_COOKIE, Now, State
from jobchat.auth.embed import is_embed_session, local_path
from jobchat.auth.models import CredentialKind
from jobchat.auth.queries import login_link_owner, user_for
from jobchat.errors import NotFound
from jobchat.web.templating import render
from jobchat.web.viewer import FormViewer

router = APIRouter(include_in_schema=False)


def plain_page(
    title: str, message: str, *, status: int = 200, hint: str = "", back: str = ""
) -> HTMLResponse:
    """A page outside the signed-in frame: sign-in problems, errors."""
    return render("plain.html", status, title=title, message=message, hint=hint, back=back)


def same_site_referrer(request: Request) -> str | None:
    """The path (and query) of the page of ours a request came from, if it says."""
    referrer = urlsplit(request.headers.get("referer", ""))
    if not referrer.netloc or referrer.netloc != request.headers.get("host"):
        return None
    path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return local_path(path) if path.startswith("/") else None


def set_embed_cookie(response: Response, value: str, *, max_age: int) -> None:
    """The embed session's cookie: HttpOnly; SameSite=None; Secure; Partitioned. Python's
    http.cookies learns the Partitioned attribute only in 3.14 (Starlette refuses it before),
    so it is added to the header Starlette wrote."""
    response.set_cookie(
        SESSION_COOKIE, value, max_age=max_age, httponly=True, samesite="none", secure=True
    )
    name, header = response.raw_headers[-1]
    assert name == b"set-cookie"  # set_cookie has just appended it
    response.raw_headers[-1] = (name, header + b"; Partitioned")


@router.get("/login/{secret}")
def redeem_login_link(
    secret: str, request: Request, state: State, now: Now, next: str | None = None
) -> Response:
    lifetime = timedelta(days=state.settings.session_days)
    target = local_path(next)
    try:
        with state.db.write() as session:
            _user, cookie = do_redeem_login_link(
                session, secret=secret, now=now, session_lifetime=lifetime
            )
    except NotFound as exc:
        if _signed_in_as_link_owner(request, state, secret, now):
            # A link followed twice (a mail client's preview, a second click) by the person
            # it was for, who is signed in already: just take them there.
            return RedirectResponse(target, status_code=303)
        return plain_page(
            "This sign-in link does not work",
            exc.message,
            hint="Ask for a new one.",
            status=404,
        )
    response = RedirectResponse(target, status_code=303)
    if is_embed_session(cookie):
        # Inside the ATS's frame every request of ours is a third-party one: only SameSite=None
        # reaches us there (which browsers take only with Secure; they count http://localhost
        # and 127.0.0.1 as secure), and Partitioned (CHIPS) keeps it in browsers that block
        # third-party cookies, in a jar of the ATS's site alone. Cross-site writes are refused
        # by the Origin check and the CSRF token (jobchat.auth.deps.check_cookie_write).
        set_embed_cookie(response, cookie, max_age=int(lifetime.total_seconds()))
        return response
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        # Behind a TLS-terminating proxy the request itself is plain HTTP; the public URL tells.
        secure=state.settings.public_url.startswith("https://"),
    )
    return response


def _signed_in_as_link_owner(request: Request, state: State, secret: str, now: datetime) -> bool:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    with state.db.read() as session:
        user = user_for(session, cookie, (CredentialKind.session,), now)
        owner = login_link_owner(session, secret)
    return user is not None and owner is not None and owner == user.id


@router.get("/")
def home(request: Request, state: State, now: Now) -> Response:
    """Staff start at their inbox, candidates at their portal."""
    cookie = request.cookies.get(SESSION_COOKIE)
    with state.db.read() as session:
        user = user_for(session, cookie, (CredentialKind.session,), now) if cookie else None
        if user is None:
            return plain_page(
                "Welcome to jobchat",
                "You are not signed in. Use the sign-in link you were sent by email or from "
                "your applicant tracking system.",
                hint="Developers: the API is described at /docs.",
            )
        return RedirectResponse("/inbox" if user.is_staff else "/portal", status_code=303)


@router.post("/logout")
def logout(request: Request, state: State, viewer: FormViewer) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with state.db.write() as session:
            do_end_session(session, secret=cookie)
    response = plain_page("Signed out", "You are signed out of jobchat.")
    if is_embed_session(cookie):
        # A partitioned cookie is only replaced by one with the same attributes.
        set_embed_cookie(response, "", max_age=0)
    else:
        response.delete_cookie(SESSION_COOKIE)
    return response

"""Sign-in links, the session cookie, and a minimal landing page."""

from __future__ import annotations

from datetime import timedelta
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobchat.auth.actions import do_end_session, do_redeem_login_link
from jobchat.auth.deps import SESSION_COOKIE, Now, State, same_origin
from jobchat.auth.models import CredentialKind
from jobchat.auth.queries import user_for
from jobchat.errors import Forbidden, NotFound

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · jobchat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;
color:#1d2433}}h1{{font-size:1.5rem}}.muted{{color:#5b6578}}button{{font:inherit}}</style>
</head><body>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status)


@router.get("/login/{secret}")
def redeem_login_link(secret: str, request: Request, state: State, now: Now) -> Response:
    lifetime = timedelta(days=state.settings.session_days)
    try:
        with state.db.write() as session:
            _user, cookie = do_redeem_login_link(
                session, secret=secret, now=now, session_lifetime=lifetime
            )
    except NotFound as exc:
        return _page(
            "Sign-in link not valid",
            f"<h1>This sign-in link does not work</h1><p>{escape(exc.message)}</p>"
            "<p class=muted>Ask for a new one.</p>",
            status=404,
        )
    response = RedirectResponse("/", status_code=303)
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


@router.get("/")
def home(request: Request, state: State, now: Now) -> HTMLResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    with state.db.read() as session:
        user = user_for(session, cookie, (CredentialKind.session,), now) if cookie else None
        if user is None:
            return _page(
                "jobchat",
                "<h1>jobchat</h1><p>You are not signed in. Use the sign-in link you were sent.</p>"
                '<p class=muted>Developers: the API is described at <a href="/docs">/docs</a>.</p>',
            )
        org = user.organization.name if user.organization else None
        who = escape(user.name)
        detail = f"staff ({escape(user.role or '')}) at {escape(org)}" if org else "candidate"
    return _page(
        user.name,
        f"<h1>Signed in as {who}</h1><p>{detail}</p>"
        f"<p class=muted>Time zone: {escape(user.timezone)}.</p>"
        '<form method="post" action="/logout"><button>Sign out</button></form>',
    )


@router.post("/logout")
def logout(request: Request, state: State) -> Response:
    if not same_origin(request.headers, state.settings.public_url):
        raise Forbidden("Cross-site request refused.", code="cross_site")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with state.db.write() as session:
            do_end_session(session, secret=cookie)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response

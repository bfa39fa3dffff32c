"""Sign-in links, the session cookie, and a minimal landing page."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.auth.actions import do_end_session, do_redeem_login_link
from jobchat.auth.deps import SESSION_COOKIE, Now, State, same_origin
from jobchat.auth.models import CredentialKind
from jobchat.auth.queries import login_link_owner, user_for
from jobchat.conversations.render import render_conversation
from jobchat.directory.models import User
from jobchat.errors import Forbidden, NotFound
from jobchat.localtime import format_datetime
from jobchat.messages.queries import history

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · jobchat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;
color:#1d2433}}h1{{font-size:1.5rem}}.muted{{color:#5b6578}}button{{font:inherit}}</style>
</head><body>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status)


def _local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only, never elsewhere (no open
    redirect through our sign-in links)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login/{secret}")
def redeem_login_link(
    secret: str, request: Request, state: State, now: Now, next: str | None = None
) -> Response:
    lifetime = timedelta(days=state.settings.session_days)
    target = _local_path(next)
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
        return _page(
            "Sign-in link not valid",
            f"<h1>This sign-in link does not work</h1><p>{escape(exc.message)}</p>"
            "<p class=muted>Ask for a new one.</p>",
            status=404,
        )
    response = RedirectResponse(target, status_code=303)
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


def _signed_in(request: Request, session: Session, now: datetime) -> User | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return user_for(session, cookie, (CredentialKind.session,), now) if cookie else None


@router.get("/conversations/{conversation_id}")
def conversation_page(
    conversation_id: int, request: Request, state: State, now: Now
) -> HTMLResponse:
    """A conversation, read-only for now: where the links in notification emails lead."""
    with state.db.read() as session:
        user = _signed_in(request, session, now)
        if user is None:
            return _page(
                "Sign in", "<h1>Sign in first</h1><p>Use the sign-in link you were sent.</p>", 401
            )
        try:
            conv, member = access.access_conversation(session, user, conversation_id)
        except NotFound as exc:
            return _page("Not found", f"<h1>Not found</h1><p>{escape(exc.message)}</p>", 404)
        out = render_conversation(session, user, conv, member)
        page, _ = history(session, user, conv.id, before=None, limit=50)
        items = "".join(
            f"<li><strong>{escape(m.author.name if m.author else 'jobchat')}</strong> "
            f"<span class=muted>{escape(format_datetime(m.created_at, user.timezone))}</span>"
            f"<br>{'<em class=muted>deleted</em>' if m.is_deleted else _lines(m.body)}</li>"
            for m in page
        )
    notice = (
        "<p><strong>This conversation has been ended.</strong></p>" if out.status == "ended" else ""
    )
    return _page(
        out.title,
        f"<h1>{escape(out.title)}</h1>{notice}<p class=muted>Signed in as {escape(user.name)}."
        " Reply by email, or in the app.</p>"
        f"<ol style='list-style:none;padding:0'>{items}</ol>",
    )


def _lines(text: str) -> str:
    return escape(text).replace("\n", "<br>")


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

"""The inbox page: every conversation the user is in, with filters and search."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from jobchat.conversations.queries import InboxQuery, inbox
from jobchat.conversations.render import render_conversations
from jobchat.directory.models import User
from jobchat.inputs import QueryText
from jobchat.web.layout import frame
from jobchat.web.templating import render, short_time
from jobchat.web.viewer import PageViewer

router = APIRouter(include_in_schema=False)

Filter = Literal["all", "unread", "messaged", "ended"]
FILTERS: list[tuple[Filter, str]] = [
    ("all", "All"),
    ("unread", "Unread"),
    ("messaged", "Messaged"),
    ("ended", "Ended"),
]
PAGE = 30


def _href(filter: str, q: str | None, cursor: str | None = None) -> str:
    params = {"filter": filter} if filter != "all" else {}
    if q:
        params["q"] = q
    if cursor:
        params["cursor"] = cursor
    return "/inbox" + ("?" + urlencode(params) if params else "")


def _rows(
    session: Session, user: User, viewer_now: Any, filter: Filter, q: str | None, cursor: str | None
) -> dict[str, Any]:
    rows, next_cursor = inbox(
        session, user, InboxQuery(filter=filter, q=q), limit=PAGE, cursor=cursor
    )
    items = render_conversations(session, user, rows)
    return {
        "items": items,
        "when": lambda at: short_time(at, viewer_now, user.timezone),
        "more_href": _href(filter, q, next_cursor) if next_cursor else None,
        "filter": filter,
        "q": q or "",
    }


@router.get("/inbox")
def inbox_page(
    viewer: PageViewer,
    filter: Filter = "all",
    q: QueryText = None,
    cursor: QueryText = None,
) -> HTMLResponse:
    with viewer.read() as (session, user):
        return render(
            "inbox.html",
            filters=[(key, label, _href(key, q)) for key, label in FILTERS],
            **_rows(session, user, viewer.caller.now, filter, q, cursor),
            **frame(session, user, viewer, "inbox"),
        )


@router.get("/inbox/list.html")
def inbox_fragment(
    viewer: PageViewer,
    filter: Filter = "all",
    q: QueryText = None,
) -> HTMLResponse:
    """The list alone, redrawn by our script when something changes."""
    with viewer.read() as (session, user):
        return render(
            "_inbox_list.html",
            me=user,
            **_rows(session, user, viewer.caller.now, filter, q, None),
        )

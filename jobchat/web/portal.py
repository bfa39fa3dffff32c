"""The candidate portal: under Jobs, each of the candidate's applications with the chats about
it, and the chat with their source partner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.job_chats import ChatSlot, candidate_portal
from jobchat.directory.models import User
from jobchat.web.labels import CANDIDATE_STAGE_WORDS
from jobchat.web.layout import frame
from jobchat.web.templating import render, short_time
from jobchat.web.viewer import PageViewer, Viewer

router = APIRouter(include_in_schema=False)


def _portal(session: Session, user: User, viewer: Viewer) -> dict[str, Any]:
    access.check_candidate(user)
    now = viewer.caller.now
    return {
        "portal": candidate_portal(session, user),
        "stage_words": CANDIDATE_STAGE_WORDS,
        "when": lambda at: short_time(at, now, user.timezone),
        "chat_href": _chat_href,
    }


def _chat_href(slot: ChatSlot) -> str:
    return f"/conversations/{slot.conversation.id}" if slot.conversation else ""


@router.get("/portal")
def portal_page(viewer: PageViewer) -> HTMLResponse:
    with viewer.read() as (session, user):
        return render(
            "portal.html",
            **_portal(session, user, viewer),
            **frame(session, user, viewer, "portal"),
        )


@router.get("/portal/jobs.html")
def portal_fragment(viewer: PageViewer) -> HTMLResponse:
    """The applications and chats alone, redrawn by our script when one of the chats changes."""
    with viewer.read() as (session, user):
        return render(
            "_portal_jobs.html", me=user, csrf=viewer.csrf, **_portal(session, user, viewer)
        )

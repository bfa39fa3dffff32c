"""Staff pages about jobs: the jobs a user can see, and a job's page with its Overview and its
Job Chats (the chat with each partner organisation, the group chat with all of them and the
relocation chat), a chat opened beside the list."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.job_chats import (
    JOB_KINDS,
    ChatSlot,
    job_chats,
    job_overview,
    visible_jobs,
)
from jobchat.conversations.models import Kind
from jobchat.directory.models import Job, User
from jobchat.errors import NotFound
from jobchat.inputs import MAX_ID, PathRef, QueryRef, QueryText
from jobchat.web.labels import STAGE_WORDS
from jobchat.web.layout import frame
from jobchat.web.templating import render, short_time
from jobchat.web.thread import CHANNEL_LABELS, Thread, load_thread
from jobchat.web.viewer import PageViewer, Viewer

router = APIRouter(include_in_schema=False)

PAGE = 50
Tab = Literal["overview", "chats"]
OpenId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _list_href(q: str | None, after: str | None = None) -> str:
    params = {k: v for k, v in (("q", q), ("after", after)) if v}
    return "/jobs" + ("?" + urlencode(params) if params else "")


def _jobs(session: Session, user: User, q: str | None, after: str | None) -> dict[str, Any]:
    access.check_staff(user)
    items, next_after = visible_jobs(session, user, q=q, after=after, limit=PAGE)
    return {
        "jobs": items,
        "q": q or "",
        "more_href": _list_href(q, next_after) if next_after else None,
    }


@router.get("/jobs")
def jobs_page(viewer: PageViewer, q: QueryText = None, after: QueryRef = None) -> HTMLResponse:
    with viewer.read() as (session, user):
        return render(
            "jobs.html",
            **_jobs(session, user, q, after),
            **frame(session, user, viewer, "jobs"),
        )


@router.get("/jobs/list.html")
def jobs_fragment(viewer: PageViewer, q: QueryText = None, after: QueryRef = None) -> HTMLResponse:
    """The list alone, redrawn by our script when something changes."""
    with viewer.read() as (session, user):
        return render("_jobs_list.html", **_jobs(session, user, q, after))


def job_href(ext_id: str, tab: Tab = "chats", open_id: int | None = None) -> str:
    params: dict[str, str] = {"tab": tab}
    if open_id is not None:
        params["open"] = str(open_id)
    return f"/jobs/{quote(ext_id, safe='')}?" + urlencode(params)


def _job(session: Session, user: User, ext_id: str) -> Job:
    access.check_staff(user)
    return access.access_job(session, user, ext_id)


def _chats(
    session: Session, user: User, viewer: Viewer, job: Job, open_id: int | None
) -> dict[str, Any]:
    slots = job_chats(session, user, job)
    now = viewer.caller.now
    return {
        "job": job,
        "slots": slots,
        "open_id": open_id,
        "when": lambda at: short_time(at, now, user.timezone),
        "chat_href": lambda slot: _chat_href(job, slot),
        "start_next": job_href(job.ext_id, "chats") + "&open={id}",
    }


def _chat_href(job: Job, slot: ChatSlot) -> str:
    assert slot.conversation is not None
    return job_href(job.ext_id, "chats", slot.conversation.id)


def _open_thread(
    session: Session, user: User, viewer: Viewer, job: Job, open_id: int | None
) -> tuple[Thread | None, str]:
    """The chat to show beside the list, if it is one of this job's chats the user is in."""
    if open_id is None:
        return None, ""
    try:
        conv, member = access.access_conversation(session, user, open_id)
    except NotFound:
        return None, "That chat does not exist, or you are not in it."
    if conv.job_id != job.id or Kind(conv.kind) not in JOB_KINDS:
        return None, "That chat is not one of this job's chats."
    return load_thread(session, user, conv, member, viewer.caller.state.settings), ""


@router.get("/jobs/{ext_id}")
def job_page(
    ext_id: PathRef, viewer: PageViewer, tab: Tab = "chats", open: OpenId = None
) -> HTMLResponse:
    with viewer.read() as (session, user):
        job = _job(session, user, ext_id)
        overview = job_overview(session, user, job)
        context: dict[str, Any] = {"thread": None, "problem": ""}
        if tab == "chats":
            context |= _chats(session, user, viewer, job, open)
            context["thread"], context["problem"] = _open_thread(session, user, viewer, job, open)
        tabs = [
            ("overview", "Overview", job_href(job.ext_id, "overview"), False),
            ("chats", "Job Chats", job_href(job.ext_id, "chats"), overview.unread > 0),
        ]
        return render(
            "job.html",
            **context,
            overview=overview,
            tab=tab,
            tabs=tabs,
            stage_words=STAGE_WORDS,
            channel_labels=CHANNEL_LABELS,
            **frame(session, user, viewer, "jobs"),
        )


@router.get("/jobs/{ext_id}/chats.html")
def job_chats_fragment(ext_id: PathRef, viewer: PageViewer, open: OpenId = None) -> HTMLResponse:
    """The Job Chats list alone, redrawn by our script when one of its chats changes."""
    with viewer.read() as (session, user):
        job = _job(session, user, ext_id)
        return render(
            "_jobs_chats.html",
            me=user,
            csrf=viewer.csrf,
            **_chats(session, user, viewer, job, open),
        )

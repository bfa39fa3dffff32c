"""Staff pages about candidates: the candidate manager (everyone the user may message, with
filters, search and "Start chat"), and a candidate's profile with its Messages, Communications
and Agency messaging tabs."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Kind
from jobchat.conversations.profile import (
    Chat,
    Profile,
    Tab,
    candidate_list,
    candidate_profile,
    is_agency_user,
    outside_candidate_manager,
)
from jobchat.conversations.queries import CandidateFilter
from jobchat.conversations.schemas import ConversationOut
from jobchat.directory.models import Application, User
from jobchat.inputs import MAX_ID, PathRef, QueryRef, QueryText
from jobchat.messages.models import Channel
from jobchat.web.labels import STAGE_WORDS
from jobchat.web.layout import frame
from jobchat.web.templating import render
from jobchat.web.thread import CHANNEL_LABELS, load_thread
from jobchat.web.viewer import PageViewer

router = APIRouter(include_in_schema=False)

PAGE = 25
HISTORY_PAGE = 50
Messaging = Literal["all", "unread", "messaged"]
FILTERS: list[tuple[Messaging, str]] = [
    ("all", "All"),
    ("unread", "Unread"),
    ("messaged", "Messaged"),
]
TAB_LABELS: dict[Tab, str] = {
    "messages": "Messages",
    "communications": "Communications",
    "agency": "Agency messaging",
}
ChannelFilter = Literal["all", "app", "email", "sms"]
CHANNEL_FILTERS: list[tuple[ChannelFilter, str]] = [
    ("all", "All"),
    ("app", "In app"),
    ("email", "Email"),
    ("sms", "SMS"),
]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


# --- links ---------------------------------------------------------------------------------------


def _query(**params: str | int | None) -> str:
    given = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(given) if given else ""


def list_href(messaging: Messaging, q: str | None, cursor: str | None = None) -> str:
    return "/candidates" + _query(
        messaging=None if messaging == "all" else messaging, q=q, cursor=cursor
    )


def profile_href(
    candidate: str,
    tab: Tab | None = None,
    application: str | None = None,
    **more: str | int | None,
) -> str:
    return f"/candidates/{quote(candidate, safe='')}" + _query(
        tab=tab, application=application, **more
    )


def chat_href(chat: Chat) -> str:
    """Where a chat's button goes: the conversation, or the composer that starts it."""
    if chat.conversation_id is not None:
        return f"/conversations/{chat.conversation_id}"
    return "/conversations/new" + _query(
        kind=chat.kind.value,
        application=chat.application,
        candidate=None if chat.application else chat.candidate,
        with_user=chat.with_user,
    )


def chat_label(chat: Chat, candidate: str) -> str:
    """A chat of the Messages tab by what it is, from the viewer's side."""
    if chat.kind is Kind.application:
        return f"Chat with {candidate}"
    if chat.kind is Kind.case:
        return "Case chat"
    return "One-to-one chat"


def _helpers() -> dict[str, Any]:
    return {
        "profile_href": profile_href,
        "chat_href": chat_href,
        "chat_label": chat_label,
        "stage_words": STAGE_WORDS,
        "kinds": Kind,
    }


# --- the candidate manager -----------------------------------------------------------------------


def _rows(
    session: Session, user: User, messaging: Messaging, q: str | None, cursor: str | None
) -> dict[str, Any]:
    access.check_staff(user)
    which: CandidateFilter | None = None if messaging == "all" else messaging
    lines, next_cursor = candidate_list(
        session, user, messaging=which, q=q, limit=PAGE, cursor=cursor
    )
    return {
        "lines": lines,
        "messaging": messaging,
        "q": q or "",
        "cursor": cursor or "",
        "more_href": list_href(messaging, q, next_cursor) if next_cursor else None,
        "agency_side": is_agency_user(user),
        "list_href": list_href,
        **_helpers(),
    }


@router.get("/candidates")
def candidates_page(
    viewer: PageViewer,
    messaging: Messaging = "all",
    q: QueryText = None,
    cursor: QueryText = None,
) -> HTMLResponse:
    with viewer.read() as (session, user):
        return render(
            "candidates.html",
            filters=[(key, label, list_href(key, q)) for key, label in FILTERS],
            **_rows(session, user, messaging, q, cursor),
            **frame(session, user, viewer, "candidates"),
        )


@router.get("/candidates/list.html")
def candidates_fragment(
    viewer: PageViewer,
    messaging: Messaging = "all",
    q: QueryText = None,
    cursor: QueryText = None,
    conversation: OptionalId = None,
) -> Response:
    """The list alone, redrawn by our script when something changes. Given the ``conversation``
    a frame was about, it answers 204 when that conversation cannot change the list (a job
    chat, an agency thread), and the script stops asking about it."""
    with viewer.read() as (session, user):
        if conversation is not None and outside_candidate_manager(session, user, conversation):
            return Response(status_code=204)
        return render(
            "_candidates_list.html",
            me=user,
            csrf=viewer.csrf,
            **_rows(session, user, messaging, q, cursor),
        )


# --- the profile ---------------------------------------------------------------------------------


def _tabs(profile: Profile) -> list[tuple[str, str, str, bool]]:
    """(key, label, href, blue dot) for ``_macros.tabs``."""
    cand = profile.candidate.ext_id
    app = profile.application.ext_id if profile.application else None
    dots = {
        "messages": any(chat.unread for chat in profile.message_chats),
        "agency": profile.agency_unread > 0,
    }
    return [
        (tab, TAB_LABELS[tab], profile_href(cand, tab, app), dots.get(tab, False))
        for tab in profile.tabs
    ]


def agency_label(c: ConversationOut, me: User) -> str:
    """An agency thread's name on its candidate's profile (which names the candidate and job),
    from the reader's side: the agency user reads "the hiring team", never their own name."""
    names = {m.id: m.name for m in c.members if m.kind == "staff"}
    agent = names.get(c.agency_user or "", "the agency")
    mine = me.ext_id == c.agency_user and me.is_staff
    if c.kind is Kind.agency:
        return "Shared thread with the hiring team" if mine else f"Shared thread with {agent}"
    other = names.get(c.employer_user or "", "the hiring team") if mine else agent
    return f"Private with {other}"


def _selector(profile: Profile) -> list[tuple[Application, str]]:
    """The applications to switch between on this tab, with their links (none for just one)."""
    if profile.tab == "agency":
        apps = [a for a in profile.applications if a.agency_user_id is not None]
    elif profile.tab == "messages" and profile.messages and profile.messages.application:
        apps = profile.applications
    else:
        apps = []
    cand = profile.candidate.ext_id
    return [(a, profile_href(cand, profile.tab, a.ext_id)) for a in apps] if len(apps) > 1 else []


@router.get("/candidates/{ext_id}")
def profile_page(
    ext_id: PathRef,
    viewer: PageViewer,
    tab: Tab | None = None,
    application: QueryRef = None,
    thread: OptionalId = None,
    channel: ChannelFilter = "all",
    before: OptionalId = None,
) -> HTMLResponse:
    state = viewer.caller.state
    with viewer.read() as (session, user):
        candidate = access.access_candidate(session, user, ext_id)
        access.check_staff(user)
        profile = candidate_profile(
            session,
            user,
            candidate,
            tab=tab,
            application=application,
            thread=thread,
            channel=None if channel == "all" else Channel(channel),
            before=before,
            limit=HISTORY_PAGE,
        )
        shown = None
        if profile.thread is not None:
            conv, member = profile.thread
            shown = load_thread(session, user, conv, member, state.settings)
        app_ext = profile.application.ext_id if profile.application else None
        return render(
            "candidate.html",
            profile=profile,
            candidate=candidate,
            thread=shown,
            channel_labels=CHANNEL_LABELS,
            tabs=_tabs(profile),
            selector=_selector(profile),
            channel=channel,
            channel_filters=[
                (
                    key,
                    label,
                    profile_href(
                        ext_id, "communications", app_ext, channel=None if key == "all" else key
                    ),
                )
                for key, label in CHANNEL_FILTERS
            ],
            older_href=profile_href(
                ext_id,
                "communications",
                app_ext,
                channel=None if channel == "all" else channel,
                before=profile.older,
            )
            if profile.older
            else None,
            agency_label=agency_label,
            thread_href=lambda conv_id: profile_href(ext_id, "agency", app_ext, thread=conv_id),
            **_helpers(),
            **frame(session, user, viewer, "candidates"),
        )

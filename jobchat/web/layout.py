"""What every page's frame shows: who is signed in, their badge, the navigation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from jobchat.conversations.queries import unread_totals
from jobchat.directory.models import User
from jobchat.events.queries import latest_event_id
from jobchat.web.viewer import Viewer


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str
    href: str


STAFF_NAV = (
    NavLink("inbox", "Inbox", "/inbox"),
    NavLink("candidates", "Candidates", "/candidates"),
    NavLink("jobs", "Jobs", "/jobs"),
    NavLink("settings", "Settings", "/settings"),
)
CANDIDATE_NAV = (
    NavLink("portal", "Jobs", "/portal"),
    NavLink("inbox", "Inbox", "/inbox"),
    NavLink("settings", "Settings", "/settings"),
)


def frame(session: Session, user: User, viewer: Viewer, active: str) -> dict[str, Any]:
    """The template context of the page frame. ``head`` is the newest event id as the page is
    read: the page's socket resumes after it, so nothing that happens between this read and the
    socket opening is missed."""
    _conversations, messages = unread_totals(session, user)
    return {
        "me": user,
        "csrf": viewer.csrf,
        "badge": messages,
        "head": latest_event_id(session),
        "nav": STAFF_NAV if user.is_staff else CANDIDATE_NAV,
        "active": active,
        "embedded": viewer.embedded,
    }

"""The inbox, the unread badge, the candidate manager and message history, through the API.

The inbox (``GET /api/v1/conversations``) lists a user's conversations, most recent activity
first, with filters and cursor paging; ``GET /api/v1/unread`` is the badge; ``GET
/api/v1/candidates`` is the recruiter's candidate manager with its messaging filters; and
``GET .../messages`` pages back through a conversation's history.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from jobchat.clock import FrozenClock
from tests.support import Api, As, World, body, start


def ids(user: As, **params: Any) -> list[int]:
    return [c["id"] for c in body(user.inbox(limit=200, **params), 200)["items"]]


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def send(user: As, conv_id: int, text: str = "Hello") -> int:
    message_id: int = body(user.send(conv_id, text), 201)["id"]
    return message_id


def badge(user: As) -> dict[str, Any]:
    return body(user.get("/api/v1/unread"), 200)


def cursor_of(parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


# --- order ---------------------------------------------------------------------------------------


def test_inbox_lists_most_recent_activity_first(world: World, clock: FrozenClock) -> None:
    """Conversations come newest activity first; a new message moves its conversation to the
    top, and ``updated_at`` is the time of that latest activity."""
    team = world["emp_team"]
    chat1 = start(team, "application", application="app1")
    clock.advance(minutes=1)
    chat2 = start(team, "application", application="app2")
    clock.advance(minutes=1)
    group = start(team, "job_partners", job="job1")
    assert ids(team) == [group, chat2, chat1]

    clock.advance(minutes=1)
    replied_at = clock.now()
    send(world["cand"], chat1, "I have a question")
    items = body(team.inbox(), 200)["items"]
    assert [c["id"] for c in items] == [chat1, group, chat2]
    assert when(items[0]["updated_at"]) == replied_at
    assert items[0]["last_message"]["body"] == "I have a question"
    assert when(items[0]["updated_at"]) > when(items[1]["updated_at"])
    assert when(items[1]["updated_at"]) > when(items[2]["updated_at"])
    assert body(team.inbox(), 200)["next_cursor"] is None

    clock.advance(minutes=1)
    body(team.post(f"/api/v1/conversations/{chat1}/read"), 200)
    assert ids(team) == [chat1, group, chat2], "reading is not activity"
    send(team, chat2, "Following up")
    assert ids(team) == [chat2, chat1, group]
    assert ids(world["cand2"]) == [chat2]


# --- filters -------------------------------------------------------------------------------------


@dataclass
class Inbox:
    """emp_team's inbox: conversations at distinct times, newest first: chat1, chat4, group,
    case1, chat2."""

    chat1: int  # application app1 (job1, cand): emp_team wrote, cand replied -> unread
    chat2: int  # application app2 (job1, cand2): emp_team wrote, then ended it
    case1: int  # case app1 (job1, cand): no messages
    group: int  # job_partners job1: sp_in wrote -> unread
    chat4: int  # application app4 (job2, cand): emp_team wrote, no reply


@pytest.fixture
def inbox(world: World, api: Api, clock: FrozenClock) -> Inbox:
    api.job("job2", "Pharmacist", "acme", team=["emp_team"])
    api.application("app4", "job2", "cand", "applied")
    team = world["emp_team"]

    clock.advance(minutes=1)
    chat1 = start(team, "application", application="app1")
    send(team, chat1, "Hi Carla")
    clock.advance(minutes=1)
    chat2 = start(team, "application", application="app2")
    send(team, chat2, "Hi Dan")
    body(team.post(f"/api/v1/conversations/{chat2}/end"), 200)
    clock.advance(minutes=1)
    case1 = start(team, "case", application="app1")
    clock.advance(minutes=1)
    group = start(team, "job_partners", job="job1")
    send(world["sp_in"], group, "Three nurses ready")
    clock.advance(minutes=1)
    chat4 = start(team, "application", application="app4")
    send(team, chat4, "About the pharmacist role")
    clock.advance(minutes=1)
    send(world["cand"], chat1, "Hello!")
    return Inbox(chat1=chat1, chat2=chat2, case1=case1, group=group, chat4=chat4)


def test_inbox_without_filters_lists_everything(world: World, inbox: Inbox) -> None:
    """The unfiltered inbox holds every conversation the user is in, newest activity first."""
    i = inbox
    assert ids(world["emp_team"]) == [i.chat1, i.chat4, i.group, i.case1, i.chat2]
    assert ids(world["emp_team"], filter="all") == [i.chat1, i.chat4, i.group, i.case1, i.chat2]


FILTERS: list[tuple[dict[str, str], list[str]]] = [
    ({"filter": "unread"}, ["chat1", "group"]),
    ({"filter": "messaged"}, ["chat1", "chat4", "group", "chat2"]),
    ({"filter": "ended"}, ["chat2"]),
    ({"kind": "application"}, ["chat1", "chat4", "chat2"]),
    ({"kind": "case"}, ["case1"]),
    ({"kind": "agency"}, []),
    ({"job": "job1"}, ["chat1", "group", "case1", "chat2"]),
    ({"job": "job2"}, ["chat4"]),
    ({"candidate": "cand"}, ["chat1", "chat4", "case1"]),
    ({"candidate": "cand2"}, ["chat2"]),
    ({"application": "app1"}, ["chat1", "case1"]),
    ({"application": "app4"}, ["chat4"]),
    ({"filter": "unread", "kind": "application"}, ["chat1"]),
    ({"job": "job1", "candidate": "cand"}, ["chat1", "case1"]),
    ({"filter": "messaged", "application": "app1"}, ["chat1"]),
]


def test_inbox_filters(world: World, inbox: Inbox) -> None:
    """Each filter keeps exactly the conversations it names, in activity order: unread (the
    user has unread messages), messaged (any message at all), ended, a kind, a job, a candidate,
    an application, and any combination of them."""
    for params, expected in FILTERS:
        got = ids(world["emp_team"], **params)
        assert got == [getattr(inbox, name) for name in expected], params


def test_unread_filter_follows_reading(world: World, inbox: Inbox) -> None:
    """A conversation leaves the unread filter once the user reads it, and comes back with the
    next message from someone else (not with the user's own)."""
    team = world["emp_team"]
    body(team.post(f"/api/v1/conversations/{inbox.chat1}/read"), 200)
    assert ids(team, filter="unread") == [inbox.group]
    send(team, inbox.chat4, "Are you still interested?")
    assert ids(team, filter="unread") == [inbox.group]
    send(world["cand"], inbox.chat4, "Yes!")
    assert ids(team, filter="unread") == [inbox.chat4, inbox.group]


def test_candidate_sees_only_their_own_conversations(world: World, inbox: Inbox) -> None:
    """The candidate's inbox (their Jobs tab) holds their own conversations only, with the
    same filters."""
    cand = world["cand"]
    assert ids(cand) == [inbox.chat1, inbox.chat4, inbox.case1]
    assert ids(cand, filter="unread") == [inbox.chat4]
    assert ids(cand, job="job2") == [inbox.chat4]
    assert ids(world["cand2"], filter="ended") == [inbox.chat2]


def test_inbox_rejects_bad_parameters(world: World) -> None:
    """An unknown filter or kind, or a limit out of range, is a 422 naming the field."""
    bad = [
        ({"filter": "starred"}, "filter"),
        ({"kind": "chitchat"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ]
    for params, field in bad:
        response = world["emp_team"].inbox(**params)
        assert response.status_code == 422, (params, response.text)
        assert set(response.json()["error"]["fields"]) == {field}, params


# --- cursor paging -------------------------------------------------------------------------------


def walk(user: As, limit: int, **params: Any) -> list[list[int]]:
    """Every page of the inbox, following next_cursor until it is null."""
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        page = body(user.inbox(**query), 200)
        pages.append([c["id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= 50, "paging does not end"


@pytest.fixture
def many(world: World, clock: FrozenClock) -> list[int]:
    """Ten conversations of emp_team, most opened at the same instant (ties in time), a few
    with later messages, two of them at the same later instant. Returns the inbox order."""
    team = world["emp_team"]
    starts = [
        ("job_partners", {"job": "job1"}),
        ("job_relocation", {"job": "job1"}),
        ("job_partner", {"job": "job1", "partner": "tbb"}),
        ("job_partner", {"job": "job1", "partner": "hireco"}),
        ("application", {"application": "app1"}),
        ("application", {"application": "app2"}),
        ("case", {"application": "app1"}),
        ("case", {"application": "app2"}),
        ("agency", {"application": "app1"}),
        ("agency_private", {"application": "app1"}),
    ]
    convs = [start(team, kind, **refs) for kind, refs in starts]
    clock.advance(minutes=1)
    send(world["cand2"], convs[5])
    clock.advance(minutes=1)
    send(team, convs[6])
    clock.advance(minutes=1)
    send(team, convs[0])
    send(world["agency_user"], convs[8])
    items = body(team.inbox(limit=200), 200)["items"]
    order = [c["id"] for c in items]
    assert sorted(order) == sorted(convs)
    times = [when(c["updated_at"]) for c in items]
    assert times == sorted(times, reverse=True)
    assert set(order[:2]) == {convs[0], convs[8]}
    assert order[2:4] == [convs[6], convs[5]]
    return order


def test_cursor_paging_walks_every_conversation_once(world: World, many: list[int]) -> None:
    """Following next_cursor with any page size yields every conversation exactly once, in the
    same order as one big page, even where several share the same activity time; every page
    but the last is full, and the last says there is no more (next_cursor null)."""
    for limit in (1, 2, 3, 4, 5, 9, 10, 11):
        pages = walk(world["emp_team"], limit)
        assert [c for page in pages for c in page] == many, limit
        assert len(pages) == math.ceil(len(many) / limit), limit
        assert all(len(page) == limit for page in pages[:-1]), limit
        assert 1 <= len(pages[-1]) <= limit, limit


def test_cursor_paging_with_a_filter(world: World, many: list[int]) -> None:
    """Paging keeps the filter: the messaged conversations, one per page."""
    pages = walk(world["emp_team"], 1, filter="messaged")
    assert [c for page in pages for c in page] == many[:4]
    assert all(len(page) == 1 for page in pages)


def test_empty_inbox_has_no_cursor(world: World) -> None:
    """An empty inbox is one empty page."""
    assert body(world["emp_other"].inbox(limit=5), 200) == {"items": [], "next_cursor": None}


BAD_CURSORS = [
    "not-a-cursor",
    "%%%",
    "é",
    cursor_of(["2026-01-05T09:00:00+00:00"]),
    cursor_of(["not a time", "1"]),
    cursor_of(["2026-01-05T09:00:00+00:00", "one"]),
    cursor_of({"at": "2026-01-05T09:00:00+00:00", "id": "1"}),
    cursor_of(["2026-01-05T09:00:00+00:00", 1]),
]


def test_bad_cursor_is_rejected(world: World) -> None:
    """A cursor this server did not give out is invalid input: 422 naming ``cursor``."""
    for cursor in BAD_CURSORS:
        response = world["emp_team"].inbox(cursor=cursor)
        assert response.status_code == 422, (cursor, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid", cursor
        assert set(error["fields"]) == {"cursor"}, cursor


def test_cursor_with_a_time_without_zone_is_rejected(world: World) -> None:
    """A forged cursor whose time has no zone offset is invalid input too (422), not a
    server error."""
    response = world["emp_team"].inbox(cursor=cursor_of(["2026-01-05T09:00:00", "1"]))
    assert response.status_code == 422, response.text
    assert set(response.json()["error"]["fields"]) == {"cursor"}


# --- the badge -----------------------------------------------------------------------------------


def test_unread_badge_counts_conversations_and_messages(world: World, clock: FrozenClock) -> None:
    """The badge counts the conversations with something unread and the unread messages in
    them. The user's own messages never count; replying or reading clears a conversation; reading
    up to a message leaves the later ones unread."""
    cand2, team, partner = world["cand2"], world["emp_team"], world["sp_out"]
    assert badge(cand2) == {"conversations": 0, "messages": 0}
    chat = start(team, "application", application="app2")
    first = send(team, chat, "One")
    send(team, chat, "Two")
    clock.advance(minutes=1)
    own = start(partner, "candidate_partner", candidate="cand2")
    send(partner, own, "Three")
    assert badge(cand2) == {"conversations": 2, "messages": 3}
    assert badge(team) == {"conversations": 0, "messages": 0}
    assert badge(partner) == {"conversations": 0, "messages": 0}

    send(cand2, chat, "Reply")
    assert badge(cand2) == {"conversations": 1, "messages": 1}
    assert badge(team) == {"conversations": 1, "messages": 1}
    assert badge(world["emp_admin"]) == {"conversations": 1, "messages": 3}

    body(cand2.post(f"/api/v1/conversations/{own}/read"), 200)
    assert badge(cand2) == {"conversations": 0, "messages": 0}

    read = body(
        world["emp_admin"].post(f"/api/v1/conversations/{chat}/read", {"up_to": first}), 200
    )
    assert read["unread_count"] == 2
    assert badge(world["emp_admin"]) == {"conversations": 1, "messages": 2}


def test_message_deleted_for_everyone_no_longer_counts_as_unread(world: World) -> None:
    """When the author deletes an unread message for everyone, it leaves the recipients'
    unread counts and badge."""
    team, cand = world["emp_team"], world["cand"]
    chat = start(team, "application", application="app1")
    send(team, chat, "Keep")
    oops = send(team, chat, "Wrong candidate, sorry")
    assert badge(cand) == {"conversations": 1, "messages": 2}
    deleted = team.delete(f"/api/v1/messages/{oops}", **{"for": "everyone"})
    assert deleted.status_code == 204, deleted.text
    assert badge(cand) == {"conversations": 1, "messages": 1}
    assert ids(cand, filter="unread") == [chat]


# --- the candidate manager -----------------------------------------------------------------------


def candidates(user: As, **params: Any) -> list[tuple[str, bool, int]]:
    page = body(user.get("/api/v1/candidates", **params), 200)
    return [(c["id"], c["has_messages"], c["unread_count"]) for c in page["items"]]


@pytest.fixture
def job2(world: World, api: Api) -> None:
    """A second acme job worked by emp_other only, with its own applicant cand3."""
    api.candidate("cand3", "Erin Candidate")
    api.job("job2", "Pharmacist", "acme", team=["emp_other"])
    api.application("app4", "job2", "cand3", "applied")


@pytest.mark.usefixtures("job2")
def test_recruiter_sees_only_candidates_of_jobs_they_work(world: World) -> None:
    """The candidate manager lists the applicants to the jobs the recruiter works, by name: a
    team member sees their job's applicants, an admin sees every job's, a partner sees the
    candidates it manages."""
    assert candidates(world["emp_team"]) == [("cand", False, 0), ("cand2", False, 0)]
    assert candidates(world["emp_other"]) == [("cand3", False, 0)]
    assert candidates(world["emp_admin"]) == [
        ("cand", False, 0),
        ("cand2", False, 0),
        ("cand3", False, 0),
    ]
    assert candidates(world["sp_in"]) == [("cand", False, 0)]
    assert candidates(world["other_emp"]) == []


def test_candidates_cannot_use_the_candidate_manager(world: World) -> None:
    """The candidate manager is for staff: a candidate gets 403."""
    for role in ("cand", "cand2"):
        response = world[role].get("/api/v1/candidates")
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "staff_only"


@pytest.mark.usefixtures("job2")
def test_candidate_manager_messaging_filters(world: World) -> None:
    """Each candidate shows whether there is history with them (the bubble) and how many
    messages from them are unread; ``messaging=messaged`` keeps those with history,
    ``messaging=unread`` those with something unread."""
    team, cand = world["emp_team"], world["cand"]
    chat = start(team, "application", application="app1")
    start(team, "application", application="app2")
    assert candidates(team, messaging="messaged") == []
    assert candidates(team, messaging="unread") == []

    send(team, chat, "Hi Carla")
    assert candidates(team) == [("cand", True, 0), ("cand2", False, 0)]
    assert candidates(team, messaging="messaged") == [("cand", True, 0)]
    assert candidates(team, messaging="unread") == []

    send(cand, chat, "Hi!")
    send(cand, chat, "When can we talk?")
    case = start(world["sp_in"], "case", application="app1")
    send(world["sp_in"], case, "Carla's documents are ready")
    assert candidates(team) == [("cand", True, 3), ("cand2", False, 0)]
    assert candidates(team, messaging="unread") == [("cand", True, 3)]

    body(team.post(f"/api/v1/conversations/{chat}/read"), 200)
    body(team.post(f"/api/v1/conversations/{case}/read"), 200)
    assert candidates(team, messaging="unread") == []
    assert candidates(team, messaging="messaged") == [("cand", True, 0)]
    assert candidates(world["emp_other"], messaging="messaged") == []


@pytest.mark.usefixtures("job2")
def test_candidate_manager_search(world: World) -> None:
    """``q`` finds candidates whose name or email contains it, ignoring case; it is plain text
    (``%`` and ``_`` match only themselves)."""
    searches = [
        ("carla", ["cand"]),
        ("CARLA cand", ["cand"]),
        ("dAn", ["cand2"]),
        ("candidate", ["cand", "cand2", "cand3"]),
        ("CAND2@EXAMPLE.ORG", ["cand2"]),
        ("cand3@", ["cand3"]),
        ("example.org", ["cand", "cand2", "cand3"]),
        ("nobody", []),
        ("%", []),
        ("_", []),
    ]
    for q, expected in searches:
        assert [c for c, _, _ in candidates(world["emp_admin"], q=q)] == expected, q


@pytest.mark.usefixtures("job2")
def test_candidate_manager_search_combines_with_messaging_filter(world: World) -> None:
    """``q`` and ``messaging`` together keep the candidates that match both."""
    admin = world["emp_admin"]
    send(admin, start(admin, "application", application="app2"), "Hi Dan")
    send(admin, start(admin, "application", application="app4"), "Hi Erin")
    assert [c for c, _, _ in candidates(admin, messaging="messaged")] == ["cand2", "cand3"]
    assert [c for c, _, _ in candidates(admin, messaging="messaged", q="dan")] == ["cand2"]
    assert candidates(admin, messaging="messaged", q="carla") == []


def test_candidate_manager_rejects_bad_cursor(world: World) -> None:
    """The candidate manager's cursor is checked like the inbox's: 422 naming ``cursor``."""
    response = world["emp_team"].get("/api/v1/candidates", cursor="nonsense")
    assert response.status_code == 422, response.text
    assert set(response.json()["error"]["fields"]) == {"cursor"}


# --- message history -----------------------------------------------------------------------------


def test_message_history_pages_back_in_time(world: World, clock: FrozenClock) -> None:
    """History comes newest page first, oldest first within a page; next_cursor, passed as
    ``before``, gives the page before, until it is null at the beginning."""
    team = world["emp_team"]
    chat = start(team, "application", application="app1")
    sent = []
    for n in range(1, 8):
        clock.advance(minutes=1)
        sent.append(send(team if n % 2 else world["cand"], chat, f"Message {n}"))

    first = body(team.messages(chat, limit=3), 200)
    assert [m["id"] for m in first["items"]] == sent[4:7]
    assert [m["body"] for m in first["items"]] == ["Message 5", "Message 6", "Message 7"]
    times = [when(m["created_at"]) for m in first["items"]]
    assert times == sorted(times)
    assert first["next_cursor"] == sent[4]

    second = body(team.messages(chat, limit=3, before=first["next_cursor"]), 200)
    assert [m["id"] for m in second["items"]] == sent[1:4]
    assert second["next_cursor"] == sent[1]

    third = body(team.messages(chat, limit=3, before=second["next_cursor"]), 200)
    assert [m["id"] for m in third["items"]] == sent[0:1]
    assert third["next_cursor"] is None

    whole = body(world["cand"].messages(chat, limit=7), 200)
    assert [m["id"] for m in whole["items"]] == sent
    assert whole["next_cursor"] is None
    assert body(world["cand"].messages(chat), 200)["items"] == whole["items"]


def test_message_history_pages_of_exact_size_end_cleanly(world: World) -> None:
    """When the history divides evenly into pages, the last full page already says there is
    no more: no empty page at the end."""
    team = world["emp_team"]
    chat = start(team, "application", application="app1")
    sent = [send(team, chat, f"Message {n}") for n in range(6)]
    first = body(team.messages(chat, limit=3), 200)
    assert [m["id"] for m in first["items"]] == sent[3:]
    second = body(team.messages(chat, limit=3, before=first["next_cursor"]), 200)
    assert [m["id"] for m in second["items"]] == sent[:3]
    assert second["next_cursor"] is None


def test_message_history_leaves_out_what_the_user_deleted_for_themself(world: World) -> None:
    """Messages a user deleted for themself are not in their history pages (others still see
    them); a message deleted for everyone stays in place as a tombstone with an empty body."""
    team, cand = world["emp_team"], world["cand"]
    chat = start(team, "application", application="app1")
    sent = [send(team, chat, f"Message {n}") for n in range(1, 8)]
    hidden = cand.delete(f"/api/v1/messages/{sent[3]}", **{"for": "me"})
    assert hidden.status_code == 204, hidden.text
    gone = team.delete(f"/api/v1/messages/{sent[5]}", **{"for": "everyone"})
    assert gone.status_code == 204, gone.text

    first = body(cand.messages(chat, limit=3), 200)
    assert [m["id"] for m in first["items"]] == sent[4:7]
    assert [(m["deleted"], m["body"]) for m in first["items"]] == [
        (False, "Message 5"),
        (True, ""),
        (False, "Message 7"),
    ]
    second = body(cand.messages(chat, limit=3, before=first["next_cursor"]), 200)
    assert [m["id"] for m in second["items"]] == sent[0:3]
    assert second["next_cursor"] is None
    assert [m["id"] for m in body(team.messages(chat, limit=50), 200)["items"]] == sent


def test_message_history_rejects_bad_paging(world: World) -> None:
    """A limit out of range or a ``before`` that is not a message id is a 422 naming it."""
    chat = start(world["emp_team"], "application", application="app1")
    for params in ({"limit": "0"}, {"limit": "201"}, {"before": "abc"}, {"before": "0"}):
        response = world["emp_team"].messages(chat, **params)
        assert response.status_code == 422, (params, response.text)
        assert set(response.json()["error"]["fields"]) == set(params), params

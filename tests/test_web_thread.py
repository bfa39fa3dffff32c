"""The conversation view in-process: the history lines that ending and reopening leave (page,
fragments, API, events, on SQLite and PostgreSQL), the list markup that keeps the message
list a list, and the page's compact header."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.db.engine import Database
from jobchat.events.models import Event
from tests.support import Api, World, body, sent, start
from tests.web_support import Browser, message_ids

ENDED = "Tess Team ended the conversation"
REOPENED = "Reopened by Ada Admin's new message"


@pytest.fixture
def chat(world: World) -> int:
    """Tess (employer team) and Carla (candidate) on application app1."""
    return start(world["emp_team"], "application", application="app1")


def history(html: str) -> list[str]:
    """The message list's items in order: "m<id>" for a message, the line's text for an
    activity line, "day" and "new" for the separators."""
    items = []
    for li in re.findall(
        r"<li class=\"(message|activity|day-separator|unread-marker)[^\"]*\"(.*?)</li>", html, re.S
    ):
        kind, rest = li
        if kind == "message":
            found = re.search(r'data-message-id="(\d+)"', rest)
            assert found is not None
            items.append(f"m{found.group(1)}")
        elif kind == "activity":
            text = re.sub(r"<[^>]+>", "", rest.split(">", 1)[1])
            items.append(" ".join(text.replace("·", " ").split()[:-1]))
        else:
            items.append("day" if kind == "day-separator" else "new")
    return [i for i in items if i not in ("day", "new")]


def test_ending_and_reopening_leave_a_line_everyone_sees(
    tess: Browser, carla: Browser, world: World, chat: int
) -> None:
    first = sent(world["emp_team"].send(chat, "Thanks for applying"))
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    # Ending twice is no change: one line.
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    for who in (tess, carla):
        assert history(who.page(f"/conversations/{chat}")) == [f"m{first['id']}", ENDED]

    again = sent(world["emp_admin"].send(chat, "One more question"))
    for who in (tess, carla):
        html = who.page(f"/conversations/{chat}")
        assert history(html) == [f"m{first['id']}", ENDED, REOPENED, f"m{again['id']}"]
        # A line is a list item with a time, never a separator role that would break the list.
        assert re.search(r'<li class="activity activity-ended" data-activity-id="\d+"', html)
        assert 'role="separator"' not in html

    # The API: every member reads the lines, each naming the message it follows.
    for role in ("cand", "emp_team", "emp_admin"):
        items = body(world[role].get(f"/api/v1/conversations/{chat}/activity"), 200)["items"]
        assert [(i["kind"], i["actor"]["id"], i["after_message"], i["message"]) for i in items] == [
            ("ended", "emp_team", first["id"], None),
            ("reopened", "emp_admin", first["id"], again["id"]),
        ], role
        assert items[0]["actor"] == {"id": "emp_team", "name": "Tess Team", "kind": "staff"}
        assert items[0]["conversation"] == chat
    # The messages endpoint is as it was: messages only.
    page = body(world["cand"].get(f"/api/v1/conversations/{chat}/messages"), 200)
    assert [m["id"] for m in page["items"]] == [first["id"], again["id"]]


def test_the_activity_of_a_conversation_is_for_its_members_only(world: World, chat: int) -> None:
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    r = world["other_emp"].get(f"/api/v1/conversations/{chat}/activity")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert world["emp_team"].get("/api/v1/conversations/999999/activity").status_code == 404


def test_the_line_travels_in_the_event_that_announces_the_change(
    world: World, chat: int, db: Database
) -> None:
    sent(world["emp_team"].send(chat, "Hello"))
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    again = sent(world["emp_team"].send(chat, "Back again"))
    with db.read() as s:
        updates = [
            dict(e.data)
            for e in s.scalars(
                select(Event)
                .where(Event.type == "conversation.updated", Event.conversation_id == chat)
                .order_by(Event.id)
            )
        ]
    assert [u["status"] for u in updates] == ["ended", "open"]
    assert [u["activity"]["kind"] for u in updates] == ["ended", "reopened"]
    assert updates[1]["activity"]["message"] == again["id"]
    listed = body(world["cand"].get(f"/api/v1/conversations/{chat}/activity"), 200)["items"]
    assert [u["activity"] for u in updates] == listed


def test_the_form_post_without_our_script_leaves_the_line_too(
    tess: Browser, carla: Browser, chat: int, world: World
) -> None:
    sent(world["emp_team"].send(chat, "Hello"))
    r = tess.form(f"/conversations/{chat}/end")
    assert r.status_code == 303
    assert ENDED in history(carla.page(f"/conversations/{chat}"))


def test_lines_fall_in_the_page_of_history_they_belong_to(
    tess: Browser, world: World, chat: int
) -> None:
    ids = [sent(world["cand"].send(chat, f"m{i}"))["id"] for i in range(5)]
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    ids += [sent(world["emp_team"].send(chat, f"n{i}"))["id"] for i in range(55)]
    reopened = "Reopened by Tess Team's new message"
    ended = ENDED

    html = tess.page(f"/conversations/{chat}")
    assert message_ids(html) == ids[-50:]
    assert ended not in history(html) and reopened not in history(html)
    older = tess.client.get(f"/conversations/{chat}/messages.html", params={"before": ids[10]})
    assert history(older.text) == [
        *(f"m{i}" for i in ids[:5]),
        ended,
        reopened,
        *(f"m{i}" for i in ids[5:10]),
    ]
    # What a page showing up to a message is missing: the newer lines and messages.
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    newer = tess.client.get(f"/conversations/{chat}/messages.html", params={"after": ids[-1]})
    assert history(newer.text) == [ended]
    # A full page of newer messages: the lines up to its last message, not those after it.
    newer = tess.client.get(f"/conversations/{chat}/messages.html", params={"after": ids[4]})
    assert history(newer.text) == [ended, reopened, *(f"m{i}" for i in ids[5:55])]


class ListChildren(HTMLParser):
    """The tags directly inside <ol id="messages">."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.inside = False
        self.children: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "ol" and ("id", "messages") in attrs:
            self.inside, self.depth = True, 0
            return
        if self.inside:
            if self.depth == 0:
                self.children.append(tag)
            if tag not in ("input", "br", "img", "path", "circle"):
                self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if self.depth == 0 and tag == "ol":
            self.inside = False
        else:
            self.depth -= 1


def test_the_message_list_holds_list_items_only(
    carla: Browser, world: World, chat: int, clock: object
) -> None:
    sent(world["emp_team"].send(chat, "Hello"))
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    parser = ListChildren()
    parser.feed(carla.page(f"/conversations/{chat}"))
    # A day separator, the unread marker, a message, an activity line: all <li>.
    assert len(parser.children) == 4
    assert set(parser.children) == {"li"}


def test_the_page_header_is_one_line_with_menus(tess: Browser, carla: Browser, chat: int) -> None:
    staff = tess.page(f"/conversations/{chat}")
    assert 'class="thread thread--page"' in staff
    head = staff[staff.index('class="thread-head"') : staff.index('id="scroller"')]
    assert 'href="/inbox"' in head and 'aria-label="Back to inbox"' in head
    # The members button is named by what it shows: "4 members".
    count = r'<span class="head-count">\d+</span><span class="visually-hidden"> members'
    assert re.search(count, head)
    assert "Carla Candidate" in head  # in the members' list
    assert 'aria-label="More actions"' in head
    assert "End conversation" in head
    assert 'href="/candidates/cand?application=app1">Candidate profile' in head
    # The irreversible forms ask first (our script reads these), and still post without it.
    assert re.search(r'<form method="post" action="/conversations/\d+/end"[^>]*data-confirm=', head)
    # The candidate: no End, no profile link, so no overflow menu at all.
    candidate = carla.page(f"/conversations/{chat}")
    head = candidate[candidate.index('class="thread-head"') : candidate.index('id="scroller"')]
    assert "More actions" not in head and "End conversation" not in head
    assert '<span class="visually-hidden"> members</span>' in head


def test_an_embedded_thread_is_not_a_page_column(
    client: TestClient, api: Api, world: World, chat: int
) -> None:
    sent(world["emp_team"].send(chat, "Hello"))
    tess = Browser.signed_in(client, api, "emp_team")
    html = tess.page("/candidates/cand", application="app1")
    assert 'id="thread"' in html
    assert "thread--page" not in html and "thread--embedded" in html
    assert "Back to inbox" not in html

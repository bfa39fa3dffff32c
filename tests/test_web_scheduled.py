"""Scheduled send on the pages, in-process: the composer's "Send later" as a plain form, the
author's scheduled messages in the thread (theirs alone), the /scheduled page with its filter,
edit and cancel forms, and what a failed one says."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient

from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.jobqueue.worker import Worker
from tests.support import Api, World, body, start
from tests.web_support import Browser, texts

LIST = "/api/v1/scheduled-messages"


@pytest.fixture
def chat(world: World) -> int:
    """Tess (employer team, in Berlin) and Carla (candidate) on application app1."""
    body(world["emp_team"].patch("/api/v1/me", {"timezone": "Europe/Berlin"}), 200)
    return start(world["emp_team"], "application", application="app1")


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return build_worker(client.app.state.mail, name="test")  # type: ignore[attr-defined]


def lines(html: str, css_class: str) -> list[str]:
    """The text of each paragraph with this class (they hold icons, so texts() stops short)."""
    pattern = rf'<p class="[^"]*\b{re.escape(css_class)}\b[^"]*"[^>]*>(.*?)</p>'
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", "", m)).split())
        for m in re.findall(pattern, html, re.S)
    ]


def later(tess: Browser, chat: int, choice: str, text: str = "Good morning", **extra: str) -> None:
    r = tess.form(f"/conversations/{chat}/messages", {"body": text, "send_later": choice, **extra})
    assert r.status_code == 303, r.text[:2000]


def mine(world: World) -> list[dict[str, object]]:
    items: list[dict[str, object]] = body(world["emp_team"].get(LIST), 200)["items"]
    return items


def test_send_later_presets_are_eight_in_the_morning_in_the_viewers_zone(
    world: World, tess: Browser, chat: int, clock: FrozenClock
) -> None:
    # Monday 5 January 2026, 10:00 in Berlin.
    assert clock.now() == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    later(tess, chat, "tomorrow", "Tomorrow morning")
    later(tess, chat, "monday", "Next Monday")
    later(tess, chat, "custom", "Wednesday afternoon", send_at="2026-01-07T14:30")
    sends = {s["body"]: datetime.fromisoformat(str(s["send_at"])) for s in mine(world)}
    assert sends == {
        "Tomorrow morning": datetime(2026, 1, 6, 7, 0, tzinfo=UTC),
        "Wednesday afternoon": datetime(2026, 1, 7, 13, 30, tzinfo=UTC),
        "Next Monday": datetime(2026, 1, 12, 7, 0, tzinfo=UTC),
    }
    # Nothing was sent now.
    assert body(world["emp_team"].messages(chat), 200)["items"] == []


def test_the_composer_offers_send_later_and_the_thread_shows_the_authors_alone(
    world: World, tess: Browser, carla: Browser, chat: int
) -> None:
    page = tess.page(f"/conversations/{chat}")
    assert 'name="send_later"' in page and 'value="tomorrow"' in page and 'value="monday"' in page
    assert 'type="datetime-local"' in page and "In your time zone, Europe/Berlin." in page
    assert "data-scheduled-strip" in page and "scheduled-item" not in page
    later(tess, chat, "tomorrow", "See you <b>tomorrow</b>")
    page = tess.page(f"/conversations/{chat}")
    assert lines(page, "scheduled-when") == ["Scheduled for Tue 6 Jan, 08:00"]
    assert texts(page, "scheduled-text") == ["See you <b>tomorrow</b>"]  # as text
    assert "See you &lt;b&gt;tomorrow&lt;/b&gt;" in page
    fragment = tess.page(f"/conversations/{chat}/scheduled.html")
    assert lines(fragment, "scheduled-when") == ["Scheduled for Tue 6 Jan, 08:00"]
    # Carla sees neither the message nor that something is scheduled.
    assert "scheduled-item" not in carla.page(f"/conversations/{chat}")
    assert "scheduled-item" not in carla.page(f"/conversations/{chat}/scheduled.html")
    assert Browser.signed_in(tess.client, world.api, "sp_out").page(
        f"/conversations/{chat}/scheduled.html", 404
    )


def test_a_bad_choice_is_a_page_saying_what_is_wrong_and_nothing_is_scheduled(
    world: World, tess: Browser, chat: int
) -> None:
    for data in (
        {"send_later": "someday"},
        {"send_later": "custom", "send_at": ""},
        {"send_later": "custom", "send_at": "2025-01-01T08:00"},
        {"send_later": "custom", "send_at": "2028-01-01T08:00"},
    ):
        r = tess.form(f"/conversations/{chat}/messages", {"body": "Hi", **data})
        assert r.status_code == 422, (data, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
    r = tess.form(f"/conversations/{chat}/messages", {"body": " ", "send_later": "tomorrow"})
    assert r.status_code == 422
    assert mine(world) == []


def test_cancel_from_the_thread_and_again_is_a_conflict(
    world: World, tess: Browser, chat: int
) -> None:
    later(tess, chat, "tomorrow")
    [s] = mine(world)
    r = tess.client.post(
        f"/scheduled/{s['id']}/cancel",
        data={"csrf": tess.csrf},
        headers={
            "Origin": "http://testserver",
            "Referer": f"http://testserver/conversations/{chat}",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/conversations/{chat}"
    assert "scheduled-item" not in tess.page(f"/conversations/{chat}")
    assert tess.form(f"/scheduled/{s['id']}/cancel").status_code == 409
    assert mine(world)[0]["status"] == "cancelled"
    # Without the session's token nothing happens.
    assert tess.form(f"/scheduled/{s['id']}/cancel", csrf=False).status_code == 403


def test_the_scheduled_page_lists_filters_edits_and_cancels(
    world: World, tess: Browser, chat: int
) -> None:
    later(tess, chat, "monday", "Second")
    later(tess, chat, "tomorrow", "First")
    page = tess.page("/scheduled")
    assert texts(page, "scheduled-card-body") == ["First", "Second"]
    assert "Carla Candidate" in page
    first, second = mine(world)
    # Edit the time and the text.
    r = tess.form(f"/scheduled/{first['id']}", {"send_at": "2026-01-06T09:15", "body": "First!"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/scheduled?saved={first['id']}#scheduled-{first['id']}"
    edited = body(world["emp_team"].get(f"{LIST}/{first['id']}"), 200)
    assert edited["body"] == "First!"
    assert datetime.fromisoformat(edited["send_at"]) == datetime(2026, 1, 6, 8, 15, tzinfo=UTC)
    assert "Your changes are saved." in tess.page("/scheduled", saved=first["id"])
    # A time in the past: the page again, the problem beside the field, the entry kept.
    r = tess.form(f"/scheduled/{first['id']}", {"send_at": "2026-01-01T09:15", "body": "Kept"})
    assert r.status_code == 422
    assert "The time must be in the future." in r.text and ">Kept</textarea>" in r.text
    assert 'aria-invalid="true"' in r.text
    # Cancel: gone from the scheduled filter, shown under cancelled.
    r = tess.form(f"/scheduled/{second['id']}/cancel")
    assert r.status_code == 303 and r.headers["location"] == f"/scheduled?cancelled={second['id']}"
    assert texts(tess.page("/scheduled?status=scheduled"), "scheduled-card-body") == ["First!"]
    assert texts(tess.page("/scheduled?status=cancelled"), "scheduled-card-body") == ["Second"]
    assert "Nothing scheduled" not in tess.page("/scheduled?status=sent")
    assert "No sent messages." in tess.page("/scheduled?status=sent")
    tess.page("/scheduled?status=pending", 422)
    # Someone else's cannot be edited or cancelled, nor seen.
    carla = Browser.signed_in(tess.client, world.api, "cand")
    assert "scheduled-card" not in carla.page("/scheduled")
    assert (
        carla.form(
            f"/scheduled/{first['id']}", {"send_at": "2026-01-06T09:15", "body": "x"}
        ).status_code
        == 404
    )
    assert carla.form(f"/scheduled/{first['id']}/cancel").status_code == 404


def test_sent_and_failed_ones_show_what_happened(
    world: World, api: Api, tess: Browser, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    later(tess, chat, "tomorrow", "Will go out")
    later(tess, chat, "monday", "Will fail")
    clock.advance(days=1)
    asyncio.run(worker.drain())
    page = tess.page(f"/conversations/{chat}")
    assert "Will go out" in texts(page, "message-body") or "Will go out" in page
    assert texts(page, "scheduled-text") == ["Will fail"]
    api.job(
        "job1", "Registered Nurse", "acme", team=["emp_team"], partners=["tbb"], status="closed"
    )
    clock.advance(days=7)
    asyncio.run(worker.drain())
    page = tess.page("/scheduled?status=all")
    assert texts(page, "scheduled-status") == ["Sent", "Failed"]
    assert "Nothing scheduled." in tess.page("/scheduled")
    assert "Not sent:" in page and "This job is closed" in page
    assert texts(tess.page("/scheduled?status=failed"), "scheduled-card-body") == ["Will fail"]


def test_the_inbox_and_the_user_menu_link_to_the_scheduled_page(tess: Browser) -> None:
    page = tess.page("/inbox")
    assert page.count('href="/scheduled"') == 2


def test_the_candidate_profiles_composer_offers_send_later_too(
    world: World, tess: Browser, chat: int
) -> None:
    later(tess, chat, "tomorrow", "From the profile")
    page = tess.page(f"/candidates/cand?tab=messages&application=app1&thread={chat}")
    assert 'name="send_later"' in page
    assert lines(page, "scheduled-when") == ["Scheduled for Tue 6 Jan, 08:00"]


@pytest.mark.parametrize(
    ("zone_name", "value"),
    [("America/New_York", "9999-12-31T23:59"), ("Asia/Tokyo", "0001-01-01T00:00")],
)
def test_a_time_at_the_edge_of_the_calendar_is_422_at_the_field(
    world: World, tess: Browser, chat: int, zone_name: str, value: str
) -> None:
    """Moved to UTC these leave the range a time can hold: the field says so (it was a 500)."""
    body(world["emp_team"].patch("/api/v1/me", {"timezone": zone_name}), 200)
    r = tess.form(
        f"/conversations/{chat}/messages",
        {"body": "Hi", "send_later": "custom", "send_at": value},
    )
    assert r.status_code == 422, r.text[:500]
    assert mine(world) == []
    later(tess, chat, "tomorrow", "Kept")
    [s] = mine(world)
    r = tess.form(f"/scheduled/{s['id']}", {"send_at": value, "body": "Changed"})
    assert r.status_code == 422, r.text[:500]
    assert "The time must be within the next year." in r.text
    assert 'aria-invalid="true"' in r.text
    assert mine(world)[0]["body"] == "Kept"


def test_a_page_cursor_that_is_not_ones_own_is_422(
    world: World, tess: Browser, chat: int, clock: FrozenClock
) -> None:
    later(tess, chat, "tomorrow", "Mine")
    [s] = mine(world)
    assert "Mine" in tess.page("/scheduled?status=all")
    when = datetime(2026, 1, 6, 7, 0, tzinfo=UTC).isoformat()
    theirs = body(world["cand"].send(chat, "Theirs", send_at=when), 202)
    tess.page(f"/scheduled?after={s['id']}")
    tess.page(f"/scheduled?after={theirs['id']}", 422)
    tess.page("/scheduled?after=999999", 422)

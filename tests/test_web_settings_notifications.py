"""The settings page's notifications (in-process, as a browser without our script posts it):
the channel switches, quiet hours in the person's own zone, and the inline errors of bad times."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support import Api, World
from tests.web_support import Browser, texts


@pytest.fixture
def tess(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "emp_team")


@pytest.fixture
def carla(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "cand")


def checked(html: str, name: str) -> bool:
    tag = re.search(rf'<input type="checkbox" id="{name}"[^>]*>', html)
    assert tag is not None, f"no {name} box"
    return " checked" in tag.group(0)


def value(html: str, name: str) -> str:
    tag = re.search(rf'<input type="time" id="{name}" name="{name}" value="([^"]*)"', html)
    assert tag is not None, f"no {name} box"
    return tag.group(1)


def test_a_candidate_sees_the_default_quiet_hours_and_every_channel(
    carla: Browser, world: World
) -> None:
    html = carla.page("/settings")
    assert checked(html, "quiet") and checked(html, "push_notifications")
    assert (value(html, "quiet_start"), value(html, "quiet_end")) == ("21:00", "08:00")
    assert checked(html, "sms_notifications") is False
    assert "One text to +14155550123" in html
    assert "In your time zone (UTC)" in html
    assert "Suggested for candidates: 21:00 to 08:00" in html
    # The device part is the browser's: without our script it says what it needs.
    assert 'id="push-device"' in html and "needs JavaScript" in html


def test_staff_have_no_text_switch_and_no_quiet_hours_at_first(tess: Browser) -> None:
    html = tess.page("/settings")
    assert 'id="sms_notifications"' not in html
    assert checked(html, "quiet") is False
    assert "Suggested for candidates" not in html


def test_the_form_saves_channels_and_quiet_hours(carla: Browser, world: World) -> None:
    r = carla.form(
        "/settings",
        {
            "timezone": "Europe/Berlin",
            "email_notifications": "on",
            "sms_notifications": "on",
            "quiet": "on",
            "quiet_start": "22:30",
            "quiet_end": "07:15",
        },
    )
    assert r.status_code == 303, r.text
    me = world["cand"].get("/api/v1/me").json()
    assert me["notifications"] == {"push": False, "email": True, "sms": True}
    assert me["quiet_hours"] == {"start": "22:30", "end": "07:15"}
    html = carla.page("/settings", saved="true")
    assert "In your time zone (Europe/Berlin)" in html
    assert (value(html, "quiet_start"), value(html, "quiet_end")) == ("22:30", "07:15")
    # Quiet hours off: none at all; the boxes keep a suggestion.
    r = carla.form("/settings", {"timezone": "Europe/Berlin", "push_notifications": "on"})
    assert r.status_code == 303
    me = world["cand"].get("/api/v1/me").json()
    assert me["quiet_hours"] is None
    assert me["notifications"] == {"push": True, "email": False, "sms": False}


def test_staff_saving_leave_the_text_setting_alone(tess: Browser, world: World) -> None:
    assert (
        world["emp_team"].patch("/api/v1/me", {"notifications": {"sms": True}}).status_code == 200
    )
    assert (
        tess.form("/settings", {"timezone": "UTC", "push_notifications": "on"}).status_code == 303
    )
    assert world["emp_team"].get("/api/v1/me").json()["notifications"]["sms"] is True


@pytest.mark.parametrize(
    ("start", "end", "field", "problem"),
    [
        ("9pm", "08:00", "quiet_start", "The start “9pm” is not a time of day as HH:MM"),
        ("21:00", "24:00", "quiet_end", "The end “24:00” is not a time of day as HH:MM"),
        ("21:00", "", "quiet_end", "The end “” is not a time of day"),
        ("08:00", "08:00", "quiet_end", "The end “08:00” is the same as the start"),
    ],
)
def test_bad_times_are_refused_beside_the_field(
    carla: Browser, world: World, start: str, end: str, field: str, problem: str
) -> None:
    before = world["cand"].get("/api/v1/me").json()
    r = carla.form(
        "/settings",
        {"timezone": "Asia/Tokyo", "quiet": "on", "quiet_start": start, "quiet_end": end},
    )
    assert r.status_code == 422
    assert texts(r.text, "field-error")[0].startswith(problem)
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', r.text)
    assert f'value="{start}"' in r.text  # what was typed stays
    after = world["cand"].get("/api/v1/me").json()
    assert after == before  # nothing saved, not even the zone


def test_times_are_ignored_while_quiet_hours_are_off(carla: Browser, world: World) -> None:
    r = carla.form("/settings", {"timezone": "UTC", "quiet_start": "nonsense", "quiet_end": ""})
    assert r.status_code == 303
    assert world["cand"].get("/api/v1/me").json()["quiet_hours"] is None

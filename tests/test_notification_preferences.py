"""Notification preferences on GET/PATCH /api/v1/me: the push, email and text switches, quiet
hours in the person's own time zone, their defaults, and errors that name the field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from tests.support import Api, World, assert_error, body


def test_defaults_staff_have_no_quiet_hours_and_candidates_the_night(world: World) -> None:
    staff = body(world["emp_team"].get("/api/v1/me"), 200)
    assert staff["notifications"] == {"push": True, "email": True, "sms": False}
    assert staff["quiet_hours"] is None
    assert staff["email_notifications"] is True
    candidate = body(world["cand"].get("/api/v1/me"), 200)
    assert candidate["notifications"] == {"push": True, "email": True, "sms": False}
    assert candidate["quiet_hours"] == {"start": "21:00", "end": "08:00"}


def test_each_switch_and_the_quiet_hours_change_alone(world: World) -> None:
    cand = world["cand"]
    after = body(cand.patch("/api/v1/me", {"notifications": {"sms": True}}), 200)
    assert after["notifications"] == {"push": True, "email": True, "sms": True}
    assert after["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    after = body(cand.patch("/api/v1/me", {"notifications": {"push": False, "email": False}}), 200)
    assert after["notifications"] == {"push": False, "email": False, "sms": True}
    assert after["email_notifications"] is False
    window = {"start": "22:30", "end": "06:15"}
    after = body(cand.patch("/api/v1/me", {"quiet_hours": window}), 200)
    assert after["quiet_hours"] == window
    assert after["notifications"] == {"push": False, "email": False, "sms": True}
    after = body(cand.patch("/api/v1/me", {"timezone": "Europe/Berlin"}), 200)
    assert after["quiet_hours"] == window  # left out: unchanged
    after = body(cand.patch("/api/v1/me", {"quiet_hours": None}), 200)
    assert after["quiet_hours"] is None
    assert body(cand.get("/api/v1/me"), 200)["quiet_hours"] is None


def test_email_notifications_is_an_alias_of_notifications_email(world: World) -> None:
    me = world["emp_team"]
    after = body(me.patch("/api/v1/me", {"email_notifications": False}), 200)
    assert after["notifications"]["email"] is False and after["email_notifications"] is False
    after = body(me.patch("/api/v1/me", {"notifications": {"email": True}}), 200)
    assert after["notifications"]["email"] is True and after["email_notifications"] is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "21:00", "end": "8am"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "21:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "21:00", "end": "21:00"}}, "quiet_hours"),
        ({"quiet_hours": "21:00-08:00"}, "quiet_hours"),
        ({"notifications": {"push": "sometimes"}}, "notifications.push"),
        ({"notifications": {"pager": True}}, "notifications.pager"),
    ],
)
def test_bad_preferences_are_refused_naming_the_field(
    world: World, change: dict[str, object], field: str
) -> None:
    before = body(world["cand"].get("/api/v1/me"), 200)
    error = assert_error(world["cand"].patch("/api/v1/me", change), 422)
    assert field in error["fields"], error
    assert body(world["cand"].get("/api/v1/me"), 200) == before


def test_staff_cannot_switch_texts_on_and_switches_take_only_true_or_false(
    world: World,
) -> None:
    staff = world["emp_team"]
    error = assert_error(staff.patch("/api/v1/me", {"notifications": {"sms": True}}), 422)
    assert error["fields"] == {"notifications.sms": "text notifications are for candidates"}
    after = body(staff.patch("/api/v1/me", {"notifications": {"sms": False}}), 200)
    assert after["notifications"]["sms"] is False
    for fuzzy in ("yes", 1, "true"):
        error = assert_error(
            world["cand"].patch("/api/v1/me", {"notifications": {"push": fuzzy}}), 422
        )
        assert "notifications.push" in error["fields"], error


class TestQuietHoursOff:
    """JOBCHAT_CANDIDATE_QUIET_HOURS=off: new candidates get none."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"candidate_quiet_hours": "off"})

    def test_new_candidates_get_no_quiet_hours(self, client: TestClient, api: Api) -> None:
        api.org("tbb", "Talent Beyond Boundaries", "source_partner")
        api.candidate("late", "Lee Late", source_partner="tbb")
        assert body(api.as_candidate("late").get("/api/v1/me"), 200)["quiet_hours"] is None

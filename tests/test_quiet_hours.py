"""Quiet hours as a window of the person's own day: inside or not, and when it ends (in UTC),
across midnight, in any time zone, over a daylight-saving change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobchat.config import Settings
from jobchat.directory.quiet_hours import QuietHours, quiet_hours_of

NIGHT = QuietHours("21:00", "08:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "ends"),
    [
        ("2026-01-05T20:59:59", None),
        ("2026-01-05T21:00:00", "2026-01-06T08:00:00"),
        ("2026-01-05T23:30:00", "2026-01-06T08:00:00"),
        ("2026-01-06T00:00:00", "2026-01-06T08:00:00"),
        ("2026-01-06T07:59:59", "2026-01-06T08:00:00"),
        ("2026-01-06T08:00:00", None),
        ("2026-01-06T12:00:00", None),
    ],
)
def test_a_window_across_midnight(now: str, ends: str | None) -> None:
    assert NIGHT.until(at(now), "UTC") == (at(ends) if ends else None)


def test_a_window_within_one_day() -> None:
    lunch = QuietHours("12:00", "13:30")
    assert lunch.until(at("2026-01-05T11:59:00"), "UTC") is None
    assert lunch.until(at("2026-01-05T12:00:00"), "UTC") == at("2026-01-05T13:30:00")
    assert lunch.until(at("2026-01-05T13:30:00"), "UTC") is None


def test_in_the_persons_time_zone_and_over_a_daylight_saving_change() -> None:
    # 09:00 UTC is 01:00 in Los Angeles (PST, UTC-8): quiet until 08:00 there, 16:00 UTC.
    assert NIGHT.until(at("2026-01-05T09:00:00"), "America/Los_Angeles") == at(
        "2026-01-05T16:00:00"
    )
    # The night clocks go forward in Berlin (29 March 2026, 02:00 -> 03:00): 08:00 is CEST.
    assert NIGHT.until(at("2026-03-28T22:00:00"), "Europe/Berlin") == at("2026-03-29T06:00:00")
    # And back (25 October 2026): 08:00 is CET again.
    assert NIGHT.until(at("2026-10-24T22:00:00"), "Europe/Berlin") == at("2026-10-25T07:00:00")


def test_parse_and_its_errors() -> None:
    assert QuietHours.parse("21:00-08:00") == NIGHT
    assert str(NIGHT) == "21:00-08:00"
    assert QuietHours.parse("off") is None and QuietHours.parse("") is None
    for bad in ("21:00", "9pm-8am", "24:00-08:00", "21:00-21:00"):
        with pytest.raises(ValueError, match=r"HH:MM|same time"):
            QuietHours.parse(bad)
    assert quiet_hours_of("21:00", None) is None
    assert quiet_hours_of("21:00", "08:00") == NIGHT


def test_the_candidate_default_setting() -> None:
    assert Settings(_env_file=None).candidate_quiet_window == NIGHT
    assert Settings(candidate_quiet_hours="off", _env_file=None).candidate_quiet_window is None
    with pytest.raises(ValueError, match="candidate_quiet_hours"):
        Settings(candidate_quiet_hours="nights", _env_file=None)

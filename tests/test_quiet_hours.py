"""Quiet hours as a window of the person's own day: inside or not, and when it ends (in UTC),
across midnight, in any time zone, over a daylight-saving change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text

from jobchat.config import Settings, get_settings
from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.quiet_hours import QuietHours, quiet_hours_of
from tests.support import World

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


def test_an_end_in_the_hour_the_clocks_repeat_is_never_in_the_past() -> None:
    # 1 November 2026, New York: 02:00 EDT -> 01:00 EST, so 01:00-02:00 happens twice.
    window = QuietHours("01:00", "01:30")
    ny = "America/New_York"
    # First pass (EDT, UTC-4): 01:10 -> ends at 01:30 EDT.
    assert window.until(at("2026-11-01T05:10:00"), ny) == at("2026-11-01T05:30:00")
    # Second pass (EST, UTC-5): 01:10 again -> ends at the second 01:30, not the first (past).
    assert window.until(at("2026-11-01T06:10:00"), ny) == at("2026-11-01T06:30:00")
    assert window.until(at("2026-11-01T06:30:00"), ny) is None


def test_an_end_in_the_hour_the_clocks_skip_moves_forward() -> None:
    # 8 March 2026, New York: 02:00 EST -> 03:00 EDT; 02:30 does not exist that night.
    window = QuietHours("01:00", "02:30")
    ny = "America/New_York"
    ends = window.until(at("2026-03-08T06:10:00"), ny)  # 01:10 EST
    assert ends is not None and ends > at("2026-03-08T06:10:00")
    assert ends == at("2026-03-08T07:30:00")  # 02:30 read as EST: 03:30 EDT
    assert window.until(at("2026-03-08T07:30:00"), ny) is None


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


@pytest.mark.parametrize(
    ("setting", "expected"), [("off", None), ("22:30-07:00", ("22:30", "07:00"))]
)
def test_the_upgrade_gives_candidates_the_configured_quiet_hours(
    world: World, db: Database, monkeypatch: pytest.MonkeyPatch, setting: str, expected: object
) -> None:
    monkeypatch.setenv("JOBCHAT_CANDIDATE_QUIET_HOURS", setting)
    get_settings.cache_clear()  # the migration reads the server's settings as the CLI has them
    config = alembic_config(db.engine.url.render_as_string(hide_password=False))
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
            command.upgrade(config, "0008")
            rows = connection.execute(
                text("SELECT quiet_start, quiet_end FROM users WHERE kind = 'candidate'")
            ).all()
        assert rows and all((None if s is None else (s, e)) == expected for s, e in rows)
    finally:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        db.engine.dispose()
        get_settings.cache_clear()

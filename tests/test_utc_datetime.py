"""jobchat.db.base.UTCDateTime: aware UTC in, aware UTC out, on both databases, whatever form
the stored value or the connection's time zone takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, select, text, update
from sqlalchemy.exc import StatementError

from jobchat.db.engine import Database
from jobchat.directory.models import User

BERLIN_EVENING = datetime(2026, 12, 6, 23, 30, 5, 250000, tzinfo=timezone(timedelta(hours=1)))


def _user(db: Database, held: datetime | None) -> int:
    with db.write() as session:
        user = User(
            kind="candidate", ext_id="c1", name="C", email="c@example.test", notify_held_until=held
        )
        session.add(user)
        session.flush()
        return user.id


def _held(db: Database, user_id: int) -> datetime | None:
    with db.read() as session:
        return session.scalar(select(User.notify_held_until).where(User.id == user_id))


def test_a_time_comes_back_as_the_same_instant_in_utc(db: Database) -> None:
    user_id = _user(db, BERLIN_EVENING)
    held = _held(db, user_id)
    assert held == BERLIN_EVENING
    assert held is not None and held.tzinfo is UTC
    assert held.isoformat() == "2026-12-06T22:30:05.250000+00:00"


def test_none_stays_none(db: Database) -> None:
    assert _held(db, _user(db, None)) is None


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-12-06 22:30:05.250000", datetime(2026, 12, 6, 22, 30, 5, 250000, tzinfo=UTC)),
        ("2026-12-06 22:30:05", datetime(2026, 12, 6, 22, 30, 5, tzinfo=UTC)),
        ("2026-12-06T22:30:05", datetime(2026, 12, 6, 22, 30, 5, tzinfo=UTC)),
    ],
)
def test_sqlite_reads_each_form_of_stored_text(
    db: Database, stored: str, expected: datetime
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite keeps times as text")
    user_id = _user(db, None)
    with db.write() as session:
        session.execute(
            text("UPDATE users SET notify_held_until = :v WHERE id = :id"),
            {"v": stored, "id": user_id},
        )
    held = _held(db, user_id)
    assert held == expected and held is not None and held.tzinfo is UTC


def test_sqlite_refuses_text_that_is_not_a_time(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite keeps times as text")
    user_id = _user(db, None)
    with db.write() as session:
        session.execute(
            text("UPDATE users SET notify_held_until = 'soon' WHERE id = :id"), {"id": user_id}
        )
    with pytest.raises(ValueError, match="soon"):
        _held(db, user_id)


def test_postgresql_gives_utc_whatever_zone_the_session_is_in(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's time zones")
    user_id = _user(db, BERLIN_EVENING)
    with db.write() as session:
        # A connection in another zone (as one whose TimeZone was changed would be).
        session.execute(text("SET LOCAL TimeZone = 'America/New_York'"))
        held = session.scalar(select(User.notify_held_until).where(User.id == user_id))
        assert held == BERLIN_EVENING and held is not None and held.tzinfo is UTC
        session.execute(update(User).where(User.id == user_id).values(notify_held_until=held))
    assert _held(db, user_id) == BERLIN_EVENING


def test_postgresql_connections_are_in_utc_and_keep_the_urls_options(
    db: Database, database_url: str
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's time zones")
    user_id = _user(db, BERLIN_EVENING)
    joiner = "&" if "?" in database_url else "?"
    options = "options=-c%20TimeZone%3DAmerica/New_York%20-c%20statement_timeout%3D12345"
    other = Database(f"{database_url}{joiner}{options}")
    try:
        with other.read() as session:
            assert session.execute(text("SHOW TimeZone")).scalar() == "UTC"
            assert session.execute(text("SHOW statement_timeout")).scalar() == "12345ms"
            held = session.scalar(select(User.notify_held_until).where(User.id == user_id))
        assert held == BERLIN_EVENING and held is not None and held.tzinfo is UTC
    finally:
        other.dispose()


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (BERLIN_EVENING, "2026-12-06 22:30:05.250000"),
        # Microseconds 0 are written too (isoformat alone would leave them out).
        (datetime(2026, 12, 6, 22, 30, 5, tzinfo=UTC), "2026-12-06 22:30:05.000000"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01 00:00:00.000000"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31 23:59:59.999999"),
        (datetime(999, 5, 5, 5, 5, 5, 5, tzinfo=UTC), "0999-05-05 05:05:05.000005"),
    ],
)
def test_sqlite_stores_the_text_sqlalchemy_s_dialect_writes(
    db: Database, given: datetime, stored: str
) -> None:
    """The text is compared as text (ranges, order): the one-step conversion writes exactly
    what the dialect's own would, for times bound by the ORM and by statements alike."""
    if not db.is_sqlite:
        pytest.skip("SQLite keeps times as text")
    dialect_text = DateTime().dialect_impl(db.engine.dialect).bind_processor(db.engine.dialect)
    assert dialect_text is not None
    assert dialect_text(given.astimezone(UTC).replace(tzinfo=None)) == stored
    user_id = _user(db, given)
    with db.write() as session:
        session.execute(update(User).where(User.id == user_id).values(deactivated_at=given))
    with db.read() as session:
        raw = session.execute(
            text("SELECT notify_held_until, deactivated_at FROM users WHERE id = :id"),
            {"id": user_id},
        ).one()
    assert tuple(raw) == (stored, stored)
    assert _held(db, user_id) == given


def test_a_naive_time_is_refused_on_both_databases(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        _user(db, datetime(2026, 12, 6, 22, 30))

"""``Database.reading()``: the hottest reads' bare connection reads as ``Database.read()`` does
(one snapshot on SQLite, each statement its own on PostgreSQL, its prepared statements kept),
and the ORM session it opens on demand shares that connection and cannot write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from jobchat.db.engine import Database
from jobchat.db.prepared import Prepared
from jobchat.db.reading import Reading
from jobchat.directory.models import Organization, OrgKind

_COUNT = Prepared(select(func.count()).select_from(Organization))


def _count(reading: Reading) -> int:
    return int(_COUNT.run(reading.connection, {}).rows[0][0])


def _add_org(db: Database, ext_id: str) -> None:
    with db.write() as session:
        session.add(Organization(ext_id=ext_id, name=ext_id, kind=OrgKind.employer))


def test_a_readings_statements_see_what_a_read_sees(db: Database) -> None:
    with db.reading() as reading:
        before = _count(reading)
        _add_org(db, "org-meanwhile")  # committed between the reading's two statements
        again = _count(reading)
        in_its_session = reading.session.scalar(select(func.count()).select_from(Organization))
    if db.is_sqlite:
        # One read transaction: a snapshot, its session's statements in it too.
        assert again == in_its_session == before
    else:
        # Outside a transaction, as read()'s: each statement sees what was committed.
        assert again == in_its_session == before + 1
    with db.reading() as reading:
        assert _count(reading) == before + 1


def test_a_postgresql_reading_holds_no_transaction_open(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite's reads are one read transaction each")
    with db.reading() as reading:
        _count(reading)
        reading.session.scalar(text("SELECT 1"))
        status = reading.connection.connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
    assert status.name == "IDLE"


def test_a_readings_session_cannot_write(db: Database) -> None:
    with db.reading() as reading:
        reading.session.add(
            Organization(ext_id="org-from-a-reading", name="No", kind=OrgKind.employer)
        )
        with pytest.raises(RuntimeError, match="must not write"):
            reading.session.flush()
    with db.reading() as reading:
        found = reading.session.scalar(
            select(func.count())
            .select_from(Organization)
            .where(Organization.ext_id == "org-from-a-reading")
        )
    assert found == 0


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Database]:
    """A PostgreSQL database whose pool holds one connection: every reading reuses it."""
    db = Database(database_url, pool_size=1, max_overflow=0)
    if db.is_sqlite:
        pytest.skip("psycopg's prepared statements")
    yield db
    db.dispose()


def test_a_postgresql_reading_keeps_its_prepared_statements_even_when_it_raises(
    one_connection: Database,
) -> None:
    """A reading that ends in an error (a history the caller may not see) leaves its statements
    prepared (psycopg, when it prepared statements itself, deallocated them all on a ROLLBACK)."""
    for _ in range(2):
        with one_connection.reading() as reading:
            _count(reading)
    with pytest.raises(LookupError):
        _read_then_fail(one_connection)
    with one_connection.reading() as reading:
        prepared = reading.session.scalar(
            text("SELECT count(*) FROM pg_prepared_statements WHERE statement ILIKE :like"),
            {"like": "%count(*)%FROM organizations%"},
        )
    assert prepared == 1


def _read_then_fail(db: Database) -> None:
    with db.reading() as reading:
        _count(reading)
        raise LookupError("not found")


def test_a_reading_is_given_its_session_or_the_way_to_open_one(db: Database) -> None:
    with db.read() as session:
        connection = session.connection()
        with pytest.raises(ValueError, match="either its session or the way to open one"):
            Reading(connection)
        with pytest.raises(ValueError, match="either its session or the way to open one"):
            Reading(connection, session=session, open_session=lambda _c: session)
        # One made within a session is that session's: closing it leaves the session open.
        within = Reading.within(session)
        within.close()
        assert within.session is session
        assert session.scalar(text("SELECT 1")) == 1

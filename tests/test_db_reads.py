"""``Database.read()``: a read never writes, and on PostgreSQL it holds no transaction open (each
statement is its own, as at READ COMMITTED inside one: its BEGIN and COMMIT were two round trips
of every read request), while its prepared statements live on."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text

from jobchat.db.engine import Database
from jobchat.db.prepared import Prepared
from jobchat.directory.models import Organization, OrgKind
from jobchat.events.sequencer import sequence_stranded

_COUNT = Prepared(select(func.count()).select_from(Organization))


@pytest.mark.parametrize("opened", ["read", "snapshot"])
def test_a_read_that_would_write_is_refused_and_writes_nothing(db: Database, opened: str) -> None:
    ext_id = f"org-from-a-{opened}"
    with getattr(db, opened)() as session:
        session.add(Organization(ext_id=ext_id, name="Nope", kind=OrgKind.employer))
        with pytest.raises(RuntimeError, match="must not write"):
            session.flush()
    with db.read() as session:
        found = session.scalar(
            select(func.count()).select_from(Organization).where(Organization.ext_id == ext_id)
        )
    assert found == 0


def test_a_postgresql_read_runs_each_statement_in_its_own_transaction(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite's reads are one snapshot each (a read transaction)")
    with db.read() as session:
        # now() is the time its transaction began: the same all through one transaction.
        first = session.scalar(text("SELECT now()"))
        time.sleep(0.01)
        second = session.scalar(text("SELECT now()"))
        status = session.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
    assert first != second
    assert status.name == "IDLE"
    # A write afterwards on the same pooled connection is a transaction again.
    with db.write() as session:
        first = session.scalar(text("SELECT now()"))
        time.sleep(0.01)
        assert session.scalar(text("SELECT now()")) == first


def test_a_postgresql_read_keeps_its_prepared_statements(db: Database) -> None:
    """A hot read's statements (``Prepared``) are prepared once a connection, not each time."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's prepared statements")
    for _ in range(8):
        with db.read() as session:
            _COUNT.run(session.connection(), {})
    with db.read() as session:
        prepared = session.scalar(
            text("SELECT count(*) FROM pg_prepared_statements WHERE statement ILIKE :like"),
            {"like": "%count(*)%FROM organizations%"},
        )
    assert prepared == 1


def _still_prepared_after(database_url: str, between: Callable[[Database], object]) -> int:
    """How many of a read's prepared statements are left after ``between`` ran on the one
    connection the pool holds."""
    db = Database(database_url, pool_size=1, max_overflow=0)
    try:
        if db.is_sqlite:
            pytest.skip("PostgreSQL's prepared statements")
        with db.read() as session:
            _COUNT.run(session.connection(), {})
        between(db)
        with db.read() as session:
            return int(
                session.scalar(
                    text("SELECT count(*) FROM pg_prepared_statements WHERE statement ILIKE :like"),
                    {"like": "%count(*)%FROM organizations%"},
                )
                or 0
            )
    finally:
        db.dispose()


def test_the_streams_check_for_stranded_events_keeps_the_prepared_statements(
    database_url: str,
) -> None:
    """The real-time stream looks for events a writer left unnumbered whenever it finds nothing
    new (every second when idle). When psycopg still prepared statements of its own, doing that
    in a transaction (rolled back when the connection was returned) made it deallocate every
    statement prepared on the connection: the pages and sends that used it next were planned
    afresh."""

    def check(db: Database) -> None:
        assert sequence_stranded(db.engine) is False

    assert _still_prepared_after(database_url, check) == 1


def test_a_snapshot_keeps_the_prepared_statements(database_url: str) -> None:
    """The stream takes a snapshot for every socket that connects (repeatable read, begun by
    the first statement)."""

    def snapshot(db: Database) -> None:
        with db.snapshot() as session:
            _COUNT.run(session.connection(), {})

    assert _still_prepared_after(database_url, snapshot) == 1

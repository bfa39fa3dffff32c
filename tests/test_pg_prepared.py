"""jobchat.db.pg_prepared: on PostgreSQL, ``Prepared`` statements are prepared by name once a
connection and run on libpq; they stay prepared whatever the connection does next (psycopg
prepares nothing of its own, so it never deallocates them), begin transactions as psycopg
would, and fail as psycopg's cursor fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import cast

import psycopg
import pytest
from sqlalchemy import Table, bindparam, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from jobchat.db.engine import Database
from jobchat.db.failures import is_unreachable
from jobchat.db.prepared import Prepared
from jobchat.directory.models import Organization, OrgKind

ORGS = cast(Table, Organization.__table__)
COUNT = Prepared(select(func.count()).select_from(ORGS).where(ORGS.c.name == bindparam("b_name")))
ADD = Prepared(
    insert(ORGS)
    .values(ext_id=bindparam("b_ext"), name=bindparam("b_name"), kind="employer")
    .returning(ORGS.c.id)
)
ISOLATION = Prepared(select(func.current_setting("transaction_isolation")))
ECHO = Prepared(select(bindparam("b_text", type_=ORGS.c.name.type)))
_PREPARED_COUNT = text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE :like")


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Database]:
    """A PostgreSQL database whose pool holds one connection: everything reuses it."""
    db = Database(database_url, pool_size=1, max_overflow=0)
    if db.is_sqlite:
        db.dispose()
        pytest.skip("PostgreSQL's prepared statements")
    yield db
    db.dispose()


def _prepared(db: Database, like: str) -> int:
    with db.read() as session:
        return int(session.scalar(_PREPARED_COUNT, {"like": like}) or 0)


def _count(db: Database, name: str) -> int:
    with db.reading() as reading:
        return int(COUNT.run(reading.connection, {"b_name": name}).rows[0][0])


def test_a_statement_is_prepared_once_and_kept_through_rollbacks(one_connection: Database) -> None:
    db = one_connection
    for _ in range(3):
        assert _count(db, "nobody") == 0
    assert _prepared(db, "SELECT count(*)%FROM organizations%") == 1

    # A statement psycopg would have prepared by now, if it prepared any.
    for _ in range(6):
        with db.read() as session:
            session.scalar(select(func.max(Organization.id)))
    # A write that fails after its statement ran is rolled back, and so is one with a savepoint
    # rolled back inside it: psycopg answered either with DEALLOCATE ALL when it had prepared
    # statements of its own.
    with pytest.raises(LookupError):
        _add_then_fail(db)
    with db.write() as session:
        with session.begin_nested():
            session.add(Organization(ext_id="kept", name="kept", kind=OrgKind.employer))
        nested = session.begin_nested()
        session.add(Organization(ext_id="dropped", name="dropped", kind=OrgKind.employer))
        session.flush()
        nested.rollback()
    assert _count(db, "rolled-back") == 0
    assert _count(db, "kept") == 1
    assert _count(db, "dropped") == 0
    assert _prepared(db, "SELECT count(*)%FROM organizations%") == 1
    assert _prepared(db, "INSERT INTO organizations%") == 1


def _add_then_fail(db: Database) -> None:
    with db.write() as session:
        ADD.run(session.connection(), {"b_ext": "rolled-back", "b_name": "rolled-back"})
        raise LookupError("changed my mind")


def _add_twice(db: Database) -> None:
    with db.write() as session:
        ADD.run(session.connection(), {"b_ext": "other", "b_name": "other"})
        ADD.run(session.connection(), {"b_ext": "twice", "b_name": "second"})


def test_psycopg_prepares_nothing_of_its_own(one_connection: Database) -> None:
    for _ in range(8):
        with one_connection.read() as session:
            session.scalar(select(func.max(Organization.id)))
    assert _prepared(one_connection, "%max(organizations.id)%") == 0


def test_a_transaction_begins_with_the_connections_isolation_level(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's BEGIN")
    with db.snapshot() as session:
        # The transaction's first statement: it is the one that begins it.
        assert ISOLATION.run(session.connection(), {}).rows == [("repeatable read",)]
    with db.write() as session:
        assert ISOLATION.run(session.connection(), {}).rows == [("read committed",)]


def test_values_go_as_text_and_come_back_as_they_went(db: Database) -> None:
    big = "é" * 1_000_000 + "\N{GRINNING FACE}"  # several socket buffers of one parameter
    with db.reading() as reading:
        for value in ("plain", "", "it's; -- 'quoted' $1 %(x)s", big, None):
            assert ECHO.run(reading.connection, {"b_text": value}).rows == [(value,)]


def test_a_constraint_error_is_sqlalchemys_and_the_transaction_stores_nothing(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's errors (test_prepared.py holds SQLite's)")
    with db.write() as session:
        ADD.run(session.connection(), {"b_ext": "twice", "b_name": "first"})
    with pytest.raises(IntegrityError) as raised:
        _add_twice(db)
    assert isinstance(raised.value.orig, psycopg.errors.UniqueViolation)
    assert _count(db, "other") == 0
    # The connection is usable again, its statements still prepared.
    assert _count(db, "first") == 1


def test_a_connection_lost_under_a_statement_is_an_outage_and_replaced(
    one_connection: Database,
) -> None:
    db = one_connection
    assert _count(db, "nobody") == 0
    with db.read() as session:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(DBAPIError) as raised:
        _count(db, "nobody")
    assert raised.value.connection_invalidated
    assert is_unreachable(raised.value)
    # The pool's next connection is new: the statement is prepared on it afresh.
    assert _count(db, "nobody") == 0
    assert _prepared(db, "SELECT count(*)%FROM organizations%") == 1


def test_connections_used_by_several_threads_in_turn_each_prepare_their_own(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's prepared statements")
    errors: list[BaseException] = []

    def reads() -> None:
        try:
            for _ in range(50):
                assert _count(db, "nobody") == 0
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=reads) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

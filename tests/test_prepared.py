"""jobchat.db.prepared: a statement run on the driver's cursor behaves as Connection.execute
would (conversions, errors, listeners, a lost connection), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from jobchat.db.engine import Database
from jobchat.db.prepared import Prepared
from jobchat.directory.models import Organization
from jobchat.jobqueue.models import QueuedJob

JOBS = cast(Table, QueuedJob.__table__)
ORGS = cast(Table, Organization.__table__)
WHEN = datetime(2026, 12, 5, 23, 30, 15, 123456, tzinfo=UTC)

ADD_JOB = Prepared(
    insert(JOBS)
    .values(
        kind=bindparam("b_kind"),
        payload=bindparam("b_payload", type_=JOBS.c.payload.type),
        status="queued",
        attempts=0,
        run_at=bindparam("b_at", type_=JOBS.c.run_at.type),
        created_at=bindparam("b_at", type_=JOBS.c.created_at.type),
        updated_at=bindparam("b_at", type_=JOBS.c.updated_at.type),
    )
    .returning(JOBS.c.id)
)
# A constant (``+ 2``, bound by SQLAlchemy as a parameter of its own) and a name used twice.
RETRY_JOB = Prepared(
    update(JOBS)
    .where(JOBS.c.id == bindparam("b_id"), JOBS.c.attempts < bindparam("b_most"))
    .values(attempts=JOBS.c.attempts + 2, last_error=bindparam("b_error"))
    .returning(JOBS.c.attempts)
)
ADD_ORG = Prepared(
    insert(ORGS).values(ext_id=bindparam("b_ext"), name=bindparam("b_ext"), kind="employer")
)


def test_a_statement_converts_and_returns_as_core_would(db: Database) -> None:
    with db.write() as session:
        connection = session.connection()
        ran = ADD_JOB.run(connection, {"b_kind": "k", "b_payload": {"ü": [1, None]}, "b_at": WHEN})
        (job_id,) = ran.rows[0]
        assert ADD_JOB.run(connection, {"b_kind": "k2", "b_payload": {}, "b_at": WHEN}).rows
        assert RETRY_JOB.run(connection, {"b_id": job_id, "b_most": 5, "b_error": "x"}).rows == [
            (2,)
        ]
        assert RETRY_JOB.run(connection, {"b_id": job_id, "b_most": 1, "b_error": "y"}).rows == []
    with db.read() as session:
        job = session.get_one(QueuedJob, job_id)
        # The JSON and the aware time went through the columns' own conversions.
        assert (job.kind, job.payload, job.run_at, job.created_at) == (
            "k",
            {"ü": [1, None]},
            WHEN,
            WHEN,
        )
        assert (job.attempts, job.last_error) == (2, "x")


def test_a_driver_error_is_sqlalchemys_and_the_write_stores_nothing(db: Database) -> None:
    with db.write() as session:
        ADD_ORG.run(session.connection(), {"b_ext": "acme"})

    def add_two() -> None:
        with db.write() as session:
            ADD_ORG.run(session.connection(), {"b_ext": "globex"})
            ADD_ORG.run(session.connection(), {"b_ext": "acme"})

    with pytest.raises(IntegrityError) as raised:
        add_two()
    assert isinstance(raised.value.orig, db.engine.dialect.loaded_dbapi.Error)
    assert "INSERT INTO organizations" in str(raised.value.statement)
    with db.read() as session:
        assert list(session.scalars(select(Organization.ext_id))) == ["acme"]


def test_listeners_hear_every_statement(db: Database) -> None:
    heard: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        heard.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        with db.write() as session:
            ADD_ORG.run(session.connection(), {"b_ext": "heard"})
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    inserts = [(s, p) for s, p in heard if s.startswith("INSERT INTO organizations")]
    assert len(inserts) == 1
    assert "heard" in (inserts[0][1].values() if isinstance(inserts[0][1], dict) else inserts[0][1])


def test_rows_hold_the_values_core_rows_would(db: Database) -> None:
    with db.write() as session:
        connection = session.connection()
        for kind, payload in (("a", {"ü": [1, None]}), ("b", None)):
            ADD_JOB.run(connection, {"b_kind": kind, "b_payload": payload, "b_at": WHEN})
    statement = select(
        JOBS.c.id, JOBS.c.kind, JOBS.c.payload, JOBS.c.run_at, JOBS.c.finished_at
    ).order_by(JOBS.c.id)
    with db.read() as session:
        connection = session.connection()
        prepared = Prepared(statement).run(connection, {}).rows
        core = [tuple(row) for row in connection.execute(statement)]
    # Times aware UTC and JSON parsed (the columns' own conversions), a NULL left as None.
    assert prepared == core
    assert [row[1:] for row in prepared] == [
        ("a", {"ü": [1, None]}, WHEN, None),
        ("b", None, WHEN, None),
    ]
    assert all(row[3].tzinfo is UTC for row in prepared)


def test_what_it_cannot_do_is_refused_when_compiled(db: Database) -> None:
    expanding = Prepared(select(ORGS.c.id).where(ORGS.c.id.in_(bindparam("ids", expanding=True))))
    with db.read() as session, pytest.raises(ValueError, match="expands"):
        expanding.run(session.connection(), {"ids": [1]})


def test_a_lost_connection_is_invalidated_and_the_next_write_gets_another(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("an embedded database has no connection to lose")

    def write_on_a_dead_connection() -> None:
        with db.write() as session:
            connection = session.connection()
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            ADD_ORG.run(connection, {"b_ext": "lost"})

    with pytest.raises(DBAPIError) as raised:
        write_on_a_dead_connection()
    # The statement's own error, the connection marked lost (so the session's rollback does
    # not try it again and fail with an error of its own, and the pool drops it).
    assert "INSERT INTO organizations" in str(raised.value.statement)
    assert raised.value.connection_invalidated
    with db.write() as session:
        ADD_ORG.run(session.connection(), {"b_ext": "after"})
    with db.read() as session:
        assert list(session.scalars(select(Organization.ext_id))) == ["after"]

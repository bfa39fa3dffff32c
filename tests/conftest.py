"""Fixtures: a real database (SQLite by default, PostgreSQL with JOBCHAT_TEST_DATABASE_URL),
a frozen clock, the app under test and a standard cast of users.

Each test gets an empty, fully migrated database: on SQLite a copy of a template file migrated
once per run; on PostgreSQL the same schema, emptied between tests (rows deleted, sequences back
to 1).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from tests.browser_support import (
    browsers,
    chromium,
    demo_template,
    launcher,
    playwright_driver,
    pytest_runtest_makereport,
    sign_in,
    web,
)
from tests.push_service import push_service_fixture  # noqa: F401 (a fixture, for every module)
from tests.support import API_KEY, TEST_CLIENT_ADDRESS, Api, World
from tests.web_support import carla, tess
from tests.world_rows import standard_client, standard_world

__all__ = [  # re-exported for pytest: the browser and page tests' fixtures, the report hook
    "browsers",
    "carla",
    "chromium",
    "demo_template",
    "launcher",
    "playwright_driver",
    "pytest_runtest_makereport",
    "sign_in",
    "tess",
    "web",
]

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")


def _pg_url(url: str) -> str:
    return Settings(database_url=url).sqlalchemy_url


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database to start every test from."""
    if PG_URL:
        db = Database(_pg_url(PG_URL))
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            # A commit then returns without waiting for its WAL to reach the disk (7 to 12 ms
            # each on the shared 2-core machine, and a test commits a few dozen times): nothing
            # here outlives a crash of the server. For every later session on this database,
            # the servers and workers that tests start included.
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        upgrade(db.engine)
        db.dispose()
        return _pg_url(PG_URL)
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return str(path)


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> str:
    if PG_URL:
        return _template
    path = tmp_path / "jobchat.db"
    shutil.copyfile(_template, path)
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Emptying:
    """How a test's PostgreSQL database is emptied: a DELETE per table, the tables that refer
    to others before those they refer to, then a check that every table is empty."""

    delete: str
    check: str


@pytest.fixture(scope="session")
def _emptying(_template: str) -> Emptying | None:
    """Emptying ~30 small tables with DELETEs takes a few milliseconds, where one TRUNCATE of
    them all took 70 to 800 on the 2-core machine (it replaces every table's files, whether it
    had rows or not)."""
    if not PG_URL:
        return None
    database = Database(_template)
    with database.engine.connect() as conn:
        # Every table but Alembic's own, whether or not a model maps it (the search index on
        # PostgreSQL is a table of its migration's own).
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ).scalars()
        referred_by: dict[str, set[str]] = {table: set() for table in tables}
        refs = conn.execute(
            text(
                "SELECT child.relname, parent.relname FROM pg_constraint fk"
                " JOIN pg_class child ON child.oid = fk.conrelid"
                " JOIN pg_class parent ON parent.oid = fk.confrelid"
                " WHERE fk.contype = 'f' AND fk.connamespace = current_schema()::regnamespace"
            )
        )
        for child, parent in refs:
            if child != parent:  # a table's references to itself go with its own DELETE
                referred_by[parent].add(child)
    database.dispose()
    order = list(TopologicalSorter(referred_by).static_order())
    return Emptying(
        delete="; ".join(f'DELETE FROM "{table}"' for table in order),
        check=" UNION ALL ".join(
            f"SELECT '{table}' WHERE EXISTS (SELECT FROM \"{table}\")" for table in order
        ),
    )


def _empty_postgres(conn: Connection, emptying: Emptying) -> None:
    conn.exec_driver_sql(emptying.delete)
    # Checked every time (a millisecond): a row left behind would make tests depend on order.
    left = conn.exec_driver_sql(emptying.check).scalars().all()
    assert not left, f"tables not emptied between tests: {left}"
    # Every id starts from 1 again: the sequences that have handed out a value are reset.
    used = conn.execute(
        text(
            "SELECT sequencename FROM pg_sequences"
            " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
        )
    ).scalars()
    resets = ", ".join(f"setval('\"{seq}\"', 1, false)" for seq in used)
    if resets:
        conn.exec_driver_sql(f"SELECT {resets}")


@pytest.fixture
def db(database_url: str, _emptying: Emptying | None) -> Iterator[Database]:
    database = Database(database_url)
    if _emptying is not None and database.engine.dialect.name == "postgresql":
        with database.engine.begin() as conn:
            _empty_postgres(conn, _emptying)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        api_key=API_KEY,
        public_url="http://testserver",
        # Tests that need the jobs worker drive one themselves (tests/mail_support.py).
        run_worker=False,
        # SMS goes to the log; tests that send for real point Twilio at a loopback server.
        sms_provider="console",
        spool_dir=str(tmp_path / "sms-spool"),
        # Each test's files in a folder of its own (tests of S3 point it elsewhere).
        storage_url=f"file://{tmp_path}/files",
        _env_file=None,
    )


@pytest.fixture
def client(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(settings, db=db, clock=clock)
    # An address as a client's peer (Starlette's default, "testclient", is none: the audit
    # log keeps only addresses).
    with TestClient(app, client=(TEST_CLIENT_ADDRESS, 50000)) as test_client:
        standard_client(test_client)
        yield test_client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def world(api: Api, db: Database, settings: Settings, clock: FrozenClock) -> World:
    return standard_world(api, db, settings, clock)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests run last, wherever their modules sort: Playwright's sync API keeps an
    event loop running in the main thread for the rest of the session once it starts, and the
    tests that drive the jobs worker with ``asyncio.run()`` cannot run after that.

    On PostgreSQL, the tests marked ``no_database`` are deselected: they cannot find anything
    the SQLite pass did not (the opt-out phrases alone are a minute of the pass)."""
    if PG_URL:
        deselected = [item for item in items if item.get_closest_marker("no_database")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("no_database")]
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)

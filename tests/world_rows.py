"""The standard cast (``tests.support.build_world``), built through the API once per run and per
set of inputs, then written into each later test's empty database as the rows building it wrote.

Some 1,600 tests start from that cast, and building it takes about thirty requests: 0.37 s a
test on SQLite and 0.45 s on PostgreSQL on the fourteenth stop's machine, some ten minutes of
each pass of the suite. Writing its rows back takes a few milliseconds.

The rows are what the first build wrote, read back with nothing in between: on SQLite each
table's rows as the driver gives them, on PostgreSQL each table's ``COPY`` text and the
sequences' positions, so every value (timestamps, JSON, token digests) is put back byte for
byte, and ids go on from where the build left them. A build is reused only for the same inputs
(``key``: the database, the settings but for each test's own paths, the clock's time, the
app's client) and only when building changed nothing that was there before (a row updated or
deleted, or a row added to SQLite's search index, which only its own statements may write): else
every test builds its own, as before.
"""

from __future__ import annotations

import json
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, inspect, text

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from tests.support import Api, As, World, build_world

# What differs from test to test in conftest's settings, and has nothing to do with the cast.
_PER_TEST_SETTINGS = {"database_url", "spool_dir", "storage_url"}
# The search index: on SQLite a virtual table and the tables it keeps itself in, which only its
# own statements may write (read, not written back: the cast has no messages to index).
_SEARCH_INDEX = "message_search"


def standard_client(client: TestClient) -> None:
    """``client`` is conftest's (a module may make its own, with other inputs): the cast's rows
    are reused only behind these."""
    _STANDARD_CLIENTS.add(client)


def standard_world(api: Api, db: Database, settings: Settings, clock: FrozenClock) -> World:
    """``build_world(api)``, or the rows of an earlier build with the same inputs written into
    ``db`` (empty), when ``api`` is the plain one over conftest's client."""
    if type(api) is not Api or api.client not in _STANDARD_CLIENTS:
        return build_world(api)
    return _WORLDS.world(api, db, key(settings, clock))


def key(settings: Settings, clock: FrozenClock) -> str:
    """What the cast's rows depend on (besides the app's client, conftest's own), as a
    dictionary key."""
    kept = settings.model_dump(exclude=_PER_TEST_SETTINGS)
    return json.dumps(
        [settings.sqlalchemy_url.split(":", 1)[0], kept, type(clock).__name__, clock.now()],
        sort_keys=True,
        default=str,
    )


@dataclass(frozen=True)
class _Rows:
    """The rows building the cast added: per table in the order they are written back."""

    tables: list[tuple[str, Any]]  # SQLite: (columns, rows); PostgreSQL: COPY text
    sequences: dict[str, int] = field(default_factory=dict)  # PostgreSQL
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token


class WorldRows:
    def __init__(self) -> None:
        self._built: dict[str, _Rows | None] = {}

    def world(self, api: Api, db: Database, inputs: str) -> World:
        """The cast in ``db`` (empty), behind ``api``: written from an earlier build's rows if
        there is one for ``inputs``, else built through the API (and its rows kept)."""
        if inputs in self._built:
            rows = self._built[inputs]
            if rows is None:  # not reusable
                return build_world(api)
            _write(db, rows)
            return World(api=api, users={r: As(api.client, t) for r, t in rows.tokens.items()})
        before = _read(db)
        world = build_world(api)
        added = _added(before, _read(db))
        self._built[inputs] = (
            None
            if added is None
            else _Rows(
                tables=added,
                sequences=_sequences(db),
                tokens={role: who.token for role, who in world.users.items()},
            )
        )
        return world


def _tables(connection: Connection) -> list[str]:
    """Every table but Alembic's (SQLite's ``sqlite_sequence`` included, where there is one),
    parents before the tables that refer to them."""
    names = [
        name
        for name, _ in inspect(connection).get_sorted_table_and_fkc_names()
        if name is not None and name != "alembic_version"
    ]
    if connection.dialect.name == "sqlite":
        exists = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
        ).first()
        if exists is not None:
            names.append("sqlite_sequence")
    return names


def _read(db: Database) -> dict[str, Counter[Any]]:
    """Every table's rows (a multiset): SQLite's as the driver gives them, PostgreSQL's as
    lines of COPY text."""
    out: dict[str, Counter[Any]] = {}
    with db.engine.connect() as connection:
        for table in _tables(connection):
            if db.is_sqlite:
                result = connection.exec_driver_sql(f'SELECT * FROM "{table}"')
                columns = tuple(result.keys())
                out[table] = Counter((columns, tuple(row)) for row in result)
            else:
                out[table] = Counter(_copy_out(connection, table).splitlines(keepends=True))
    return out


def _added(
    before: dict[str, Counter[Any]], after: dict[str, Counter[Any]]
) -> list[tuple[str, Any]] | None:
    """The rows ``after`` has that ``before`` had not, per table in ``after``'s order; None if
    anything of ``before`` went or changed, or the search index was written."""
    added: list[tuple[str, Any]] = []
    for table, rows in after.items():
        if before.get(table, Counter()) - rows:
            return None  # a row updated or deleted
        new = rows - before.get(table, Counter())
        if not new:
            continue
        if table.startswith(_SEARCH_INDEX):
            return None
        if isinstance(next(iter(new)), bytes):
            added.append((table, b"".join(new.elements())))
        else:
            columns = next(iter(new))[0]
            added.append((table, (columns, [values for _, values in new.elements()])))
    return added


def _sequences(db: Database) -> dict[str, int]:
    if db.is_sqlite:
        return {}  # ids follow the rows (sqlite_sequence, where used, is a table above)
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT sequencename, last_value FROM pg_sequences"
                " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
            )
        )
        return {name: int(value) for name, value in rows}


def _write(db: Database, rows: _Rows) -> None:
    with db.engine.begin() as connection:
        for table, data in rows.tables:
            if db.is_sqlite:
                columns, values = data
                listed = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join("?" for _ in columns)
                cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                cursor.executemany(f'INSERT INTO "{table}" ({listed}) VALUES ({marks})', values)
            else:
                _copy_in(connection, table, data)
        for sequence, value in rows.sequences.items():
            connection.execute(
                text("SELECT setval(CAST(:s AS regclass), :v, true)"),
                {"s": f'"{sequence}"', "v": value},
            )


def _copy_out(connection: Connection, table: str) -> bytes:
    raw = connection.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" TO STDOUT') as copy:  # type: ignore[attr-defined]
        return b"".join(bytes(block) for block in copy)


def _copy_in(connection: Connection, table: str, data: bytes) -> None:
    raw = connection.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" FROM STDIN') as copy:  # type: ignore[attr-defined]
        copy.write(data)


_STANDARD_CLIENTS: weakref.WeakSet[TestClient] = weakref.WeakSet()
_WORLDS = WorldRows()

"""What every benchmark that seeds a database shares: resetting it, a seeding engine, batched
inserts, sequences after inserting explicit ids, the steps' timings and the final ANALYZE."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, insert, text
from sqlalchemy.engine import Connection, make_url

from jobchat.config import Settings
from jobchat.db.engine import make_engine
from jobchat.db.migrate import upgrade


def sqlalchemy_url(url: str) -> str:
    return Settings(database_url=url, _env_file=None).sqlalchemy_url


def reset_database(url: str) -> None:
    """Drop and recreate: the SQLite file, or the PostgreSQL database's public schema."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database, "an SQLite file path is needed"
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = parsed.database
    if not name or name in ("test", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop the schema of database {name!r}: use e.g. 'bench'")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not found:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    engine = create_engine(parsed)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def seeding_engine(url: str) -> Engine:
    """A reset, migrated database's engine for seeding. On SQLite: no fsync and a big page
    cache while seeding only; the benchmark itself runs on the app's own connection settings
    (WAL, synchronous=NORMAL). The listener runs after make_engine's own."""
    reset_database(url)
    engine = make_engine(url)
    upgrade(engine)
    if engine.dialect.name == "sqlite":
        engine.dispose()

        @event.listens_for(engine, "connect")
        def _seed_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=OFF")
            dbapi_connection.execute("PRAGMA cache_size=-400000")

    return engine


def bulk_insert(
    conn: Connection, table: Table, rows: Iterable[dict[str, Any]], batch: int = 10_000
) -> int:
    """Core executemany in batches."""
    count = 0
    buf: list[dict[str, Any]] = []
    stmt = insert(table)
    for row in rows:
        buf.append(row)
        if len(buf) >= batch:
            conn.execute(stmt, buf)
            count += len(buf)
            buf = []
    if buf:
        conn.execute(stmt, buf)
        count += len(buf)
    return count


def sync_sequences(conn: Connection, tables: Iterable[str]) -> None:
    """After inserting explicit ids on PostgreSQL, move each table's id sequence past them
    (SQLite's rowids need nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
        )


def analyze(engine: Engine) -> None:
    """Statistics for the planner once the data is in (and SQLite's WAL folded back)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


class Steps:
    """The seeding's steps and how long each took, printed as they end."""

    def __init__(self, width: int = 26) -> None:
        self.seconds: dict[str, float] = {}
        self.started = self._last = time.perf_counter()
        self._width = width

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now
        print(f"  seed: {name:<{self._width}} {self.seconds[name]:7.2f} s", flush=True)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 2)

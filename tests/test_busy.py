"""A write that cannot get its turn in time answers 503 ``busy`` with Retry-After, in the one
error shape, never a 500; it changes nothing, a retry succeeds, and reads go on meanwhile."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db import engine
from jobchat.db.engine import WRITE_LOCK_KEY, Database
from tests.support import Api, World, assert_error, build_world, start, wait_until
from tests.test_stream_e2e import Backend, Caller, Cast, launch


def test_a_send_that_waits_too_long_for_the_write_lock_answers_503(
    world: World, db: Database, client: TestClient
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's busy timeout")
    conv_id = start(world["emp_admin"], "application", application="app1")

    # A write gives up after 200 ms instead of 10 s.
    db.write_turn.timeout = 0.2
    path = make_url(db.url).database
    assert path
    # Another connection to the same file holds the write lock.
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        r = world["emp_admin"].send(conv_id, "while the database is locked")
        error = assert_error(r, 503, "busy")
        assert error["message"]
        assert r.headers["Retry-After"] == "1"
        # Reading still works meanwhile (WAL): and the refused send stored nothing.
        assert world["cand"].messages(conv_id).json()["items"] == []
        assert world["cand"].get("/api/v1/unread").json() == {"conversations": 0, "messages": 0}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    r = world["emp_admin"].send(conv_id, "once it is free again")
    assert r.status_code == 201, r.text
    assert [m["body"] for m in world["cand"].messages(conv_id).json()["items"]] == [
        "once it is free again"
    ]


# --- a write lock held elsewhere, on both databases ----------------------------------------------


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Another connection, outside the server, holds the database's write turn: SQLite's write
    lock (BEGIN IMMEDIATE), or on PostgreSQL the advisory lock every sender takes first."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        holder = sqlite3.connect(url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as pg:
        pg.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        try:
            yield
        finally:
            pg.rollback()


def test_a_send_past_the_write_timeout_answers_busy_and_changes_nothing(
    settings: Settings, database_url: str, db: Database, clock: FrozenClock
) -> None:
    """The turn's bound is the setting, on both databases: on PostgreSQL the advisory lock's
    wait is cut by lock_timeout (before, a send waited for as long as the lock was held)."""
    short = Database(database_url, write_timeout_seconds=0.5)
    try:
        with TestClient(create_app(settings, db=short, clock=clock)) as client:
            world = build_world(Api(client))
            conv_id = start(world["emp_admin"], "application", application="app1")
            with write_lock_held(database_url):
                r = world["emp_admin"].send(conv_id, "while another process writes")
                assert_error(r, 503, "busy")
                assert r.headers["Retry-After"] == "1"
                assert world["cand"].messages(conv_id).json()["items"] == []
            r = world["emp_admin"].send(conv_id, "afterwards")
            assert r.status_code == 201, r.text
            items = world["cand"].messages(conv_id).json()["items"]
            assert [m["body"] for m in items] == ["afterwards"]
    finally:
        short.dispose()


def test_a_writer_behind_another_process_asks_for_the_lock_every_few_milliseconds(
    db: Database,
) -> None:
    """SQLite's own busy handler sleeps up to 100 ms between asks, so a writer behind another
    process's writes (a worker beside the server) got in long after the lock was free, or not
    at all while that process kept writing. The lock is asked for every few ms instead, with
    SQLite's handler off; the writer gets in once the holder lets go, and only then."""
    if not db.is_sqlite:
        pytest.skip("SQLite's write lock")
    asks: list[float] = []

    def count(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            asks.append(time.monotonic())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with ThreadPoolExecutor(1) as pool:
            with write_lock_held(db.url):
                got_in = pool.submit(_time_of_write, db)
                time.sleep(0.5)
                assert not got_in.done(), "wrote while another process held the lock"
                waited = len(asks)
                released = time.monotonic()
            # (The holder let go as the block ended.)
            entered = got_in.result(timeout=10)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert entered >= released - 0.05
    # Every 2 ms or so for half a second (SQLite's handler: one statement that waits).
    assert waited >= 50, waited
    assert max(b - a for a, b in itertools.pairwise(asks)) < 0.25


def _time_of_write(db: Database) -> float:
    with db.write() as session:
        session.connection()
        return time.monotonic()


SENDS = 64  # more than the 40 threads sync routes had in all


@pytest.mark.slow
def test_reads_keep_answering_while_sends_queue_behind_a_held_write_lock(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    """64 sends wait on a write lock another process holds, through a real ``jobchat serve``.

    Before: every one of them held one of the 40 threads sync routes run on, for as long as the
    lock was held (one after the other, 10 s each), and plain reads waited behind them. Now at
    most 32 wait (the rest are answered 503 busy at once), reads have threads of their own, and
    the waiting ones are answered 503 busy once JOBCHAT_WRITE_TIMEOUT_SECONDS is up.
    """
    timeout = 5.0  # JOBCHAT_WRITE_TIMEOUT_SECONDS, half its default
    server = launch(
        "busy", Backend(database_url, None, "unused"), tmp_path, write_timeout_seconds="5"
    )
    try:
        server.wait_ready()
        cast = Cast(server)
        staff, cand = cast.user("emp_admin"), cast.user("cand")
        conv = staff.start("application", application=cast.ext("app1"))
        messages = f"/api/v1/conversations/{conv}/messages"
        reader = httpx.Client(base_url=server.base, timeout=timeout / 2, trust_env=False)
        writer = httpx.Client(
            base_url=server.base,
            timeout=timeout + 20,
            limits=httpx.Limits(max_connections=SENDS),
            trust_env=False,
        )
        answers: list[httpx.Response] = []

        def send(i: int) -> None:
            answers.append(writer.post(messages, json={"body": f"send {i}"}, headers=auth(staff)))

        with ThreadPoolExecutor(SENDS) as pool, write_lock_held(database_url):
            sent_at = time.monotonic()
            for i in range(SENDS):
                pool.submit(send, i)
            # Once one is refused at once, the queue is full (before, none ever was).
            with contextlib.suppress(AssertionError):
                wait_until(lambda: bool(answers), "a send refused at once", timeout=timeout / 2)
            for who, path in [
                (cand, messages),
                (cand, "/api/v1/conversations"),
                (cand, "/api/v1/unread"),
                (staff, f"/api/v1/conversations/{conv}"),
            ]:
                r = reader.get(path, headers=auth(who))
                assert r.status_code == 200, (path, r.text)
            # The reads did not wait for the writes: those are waiting still.
            assert len(answers) < SENDS
            # The lock stays held until the waiting ones have given up: after the setting's
            # timeout, not the default's (10 s), whatever the load (a margin of 4 s).
            wait_until(
                lambda: len(answers) == SENDS,
                "every send answered within the write timeout",
                timeout=sent_at + timeout + 4 - time.monotonic(),
            )
        for r in answers:
            assert_error(r, 503, "busy")
            assert r.headers["Retry-After"] == "1"
        assert reader.get(messages, headers=auth(cand)).json()["items"] == []
        assert reader.get("/api/v1/unread", headers=auth(cand)).json()["messages"] == 0
        # Once the lock is free, sends go through again, and only they were stored.
        assert staff.send(conv, "after the lock")["body"] == "after the lock"
        items = reader.get(messages, headers=auth(cand)).json()["items"]
        assert [m["body"] for m in items] == ["after the lock"]
        assert "Traceback" not in server.output(), server.output()[-3000:]
        reader.close()
        writer.close()
    finally:
        server.stop()


def auth(who: Caller) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


def test_a_write_that_holds_the_turn_long_is_logged_with_who_wrote(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every other writer waits for as long as one holds the turn: the log says how long, and
    which code held it, so that an operator can find what stalled the sends."""
    monkeypatch.setattr(engine, "SLOW_WRITE_SECONDS", 0.05)

    def lingering_write() -> None:
        with db.write():
            time.sleep(0.08)

    def lingering_work() -> None:
        with db.work():
            time.sleep(0.08)

    def quick_write() -> None:
        with db.write():
            pass

    with caplog.at_level("WARNING", logger="jobchat.db.engine"):
        quick_write()
        assert caplog.records == []
        lingering_write()
        lingering_work()
    slow = [r.getMessage() for r in caplog.records]
    assert len(slow) == (2 if db.is_sqlite else 1), slow  # PostgreSQL's work() takes no turn
    assert "held the write turn for" in slow[0]
    assert "lingering_write (test_busy.py:" in slow[0]
    if db.is_sqlite:
        assert "lingering_work (test_busy.py:" in slow[1]

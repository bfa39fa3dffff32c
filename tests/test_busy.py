"""A write that cannot get its turn within SQLite's busy timeout answers 503 ``busy`` with
Retry-After, in the one error shape, never a 500; it changes nothing, and a retry succeeds."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from jobchat.db.engine import Database
from tests.support import World, assert_error, start


def test_a_send_that_waits_too_long_for_the_write_lock_answers_503(
    world: World, db: Database, client: TestClient
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's busy timeout")
    conv_id = start(world["emp_admin"], "application", application="app1")

    # The app's connections give up after 200 ms instead of 10 s (this listener runs after
    # the engine's own, which sets the usual timeout).
    @event.listens_for(db.engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    db.engine.dispose()
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

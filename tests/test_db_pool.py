"""PostgreSQL's pooled connections are tested before use only when they may be dead
(``jobchat.db.engine._PingIfStale``): one that sat unused, or any once another was found dead.
A connection used a moment ago is handed out as it is, without the round trip of a test.

The database goes away through a relay on loopback (tests/relay_support.py), as in
tests/test_outage_postgres.py: ``cut()`` closes the relayed connections, ``restore()`` listens
again, so every pooled connection is dead while new ones work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import literal, select, text
from sqlalchemy.exc import DBAPIError

from jobchat.db import engine
from jobchat.db.engine import Database
from jobchat.db.failures import is_outage
from jobchat.db.prepared import Prepared, connection_of
from tests.relay_support import Relay, relay, through

__all__ = ["relay"]

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL: set JOBCHAT_TEST_DATABASE_URL")


@pytest.fixture
def relayed(relay: Relay, database_url: str) -> Iterator[Database]:
    database = Database(through(relay, database_url))
    try:
        yield database
    finally:
        database.dispose()


_ONE = Prepared(select(literal(1)))


def read(db: Database, *, prepared: bool = False) -> int:
    """A read through the session, or on the driver's cursor (``Prepared``, as the hot paths
    read: it bypasses SQLAlchemy's own handling of a dead connection)."""
    with db.read() as session:
        if prepared:
            return int(_ONE.run(connection_of(session), {}).rows[0][0])
        return int(session.execute(text("SELECT 1")).scalar_one())


def sent_by_a_read(db: Database, relay: Relay) -> int:
    before = relay.sent
    assert read(db) == 1
    return relay.sent - before


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_test(
    relayed: Database, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    read(relayed)  # the connection is made (a new one is never tested)
    trusted = sent_by_a_read(relayed, relay)
    assert sent_by_a_read(relayed, relay) == trusted  # the same read sends the same bytes
    # Had it sat unused for long enough, the same read is preceded by a test.
    monkeypatch.setattr(engine, "IDLE_PING_SECONDS", 0.0)
    assert sent_by_a_read(relayed, relay) > trusted
    assert relay.accepted == 1  # one connection all along: it was alive


def test_a_connection_that_sat_unused_is_tested_and_replaced_when_dead(
    relayed: Database, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    read(relayed)
    relay.cut()
    relay.restore()
    # The pooled connection is dead; it has been unused for longer than the limit.
    monkeypatch.setattr(engine, "IDLE_PING_SECONDS", 0.0)
    assert read(relayed) == 1  # tested, found dead, replaced: the request never sees it
    assert relay.accepted == 2


@pytest.mark.parametrize("prepared", [False, True], ids=["session", "prepared"])
def test_once_a_connection_is_found_dead_every_other_is_tested_before_its_next_use(
    relayed: Database, relay: Relay, prepared: bool
) -> None:
    # Two connections in the pool, both used a moment ago.
    both_open = threading.Barrier(2)

    def hold_one() -> None:
        with relayed.read() as session:
            session.execute(text("SELECT 1"))
            both_open.wait(timeout=10)

    other = threading.Thread(target=hold_one)
    other.start()
    with relayed.read() as session:
        session.execute(text("SELECT 1"))
        both_open.wait(timeout=10)
    other.join()
    assert relay.accepted == 2

    relay.cut()
    relay.restore()
    # The first use meets its dead connection: an outage (answered 503 by the app).
    with pytest.raises(DBAPIError) as failed:
        read(relayed, prepared=prepared)
    assert is_outage(failed.value)
    # The other was used as recently, but it is tested now, found dead and replaced.
    assert read(relayed) == 1
    assert read(relayed) == 1
    assert relay.accepted == 4  # both dead ones replaced by new connections

"""Group commit on PostgreSQL: sends into different conversations share one transaction, a
conversation another transaction holds is not waited for inside a batch (its send runs alone
after it), and a deadlock between two processes' batches costs a retry, not an error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from jobchat.db.engine import Database
from jobchat.directory.models import Organization
from tests.support import eventually


@pytest.fixture
def pg(db: Database) -> Database:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's advisory locks and deadlocks")
    return db


@pytest.fixture
def second_process(pg: Database) -> Iterator[Database]:
    """Another server process's connections to the same database."""
    other = Database(pg.url)
    yield other
    other.dispose()


def add_org(name: str) -> Callable[[Session], int]:
    """Stores an organisation; answers with its transaction's id."""

    def work(session: Session) -> int:
        session.add(Organization(ext_id=name, name=name, kind="employer"))
        session.flush()
        return int(session.scalar(text("SELECT txid_current()")) or 0)

    return work


def stored(db: Database) -> list[str]:
    with db.read() as session:
        return sorted(session.scalars(select(Organization.ext_id)))


def queued(db: Database) -> int:
    return len(db._grouped._queue)


def hold_the_batch_until(db: Database, waiting: int) -> Callable[[Session], int]:
    """A piece that leads a batch of its own and ends it only when ``waiting`` more pieces are
    queued: those then share the next batch."""

    def work(session: Session) -> int:
        deadline = time.monotonic() + 10
        while queued(db) < waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        return 0

    return work


def submit_in_order(
    db: Database, pool: ThreadPoolExecutor, pieces: list[tuple[Callable[[Session], int], int]]
) -> list[Future[int]]:
    """The first piece (a ``hold_the_batch_until``) leads a batch; each of the others is queued
    behind it, in this order. Each is submitted once the one before is where it should be: a
    fixed pause between them was not always enough on a loaded machine, and a piece queued
    before the leader had begun its batch joined it."""
    (lead, lead_conversation), *rest = pieces
    futures = [pool.submit(db.write_grouped, lead, concurrent_in=lead_conversation)]
    eventually(lambda: (db._grouped._leading and queued(db) == 0) or None, "the lead's batch")
    for n, (work, conversation) in enumerate(rest, start=1):
        futures.append(pool.submit(db.write_grouped, work, concurrent_in=conversation))
        if n < len(rest):  # the last one ends the lead's batch, and the queue empties
            eventually(_queued(db, n), f"{n} pieces queued")
    return futures


def _queued(db: Database, n: int) -> Callable[[], bool | None]:
    return lambda: queued(db) == n or None


def a_batch_of_three(db: Database, pool: ThreadPoolExecutor) -> list[Future[int]]:
    """Sends storing a, b and c into conversations 11, 12 and 13, queued to share a batch."""
    _, *three = submit_in_order(
        db,
        pool,
        [
            (hold_the_batch_until(db, 3), 1),
            (add_org("a"), 11),
            (add_org("b"), 12),
            (add_org("c"), 13),
        ],
    )
    return three


def test_sends_into_different_conversations_share_one_transaction(pg: Database) -> None:
    pool = ThreadPoolExecutor(4)
    batch = a_batch_of_three(pg, pool)
    pool.shutdown(wait=True)
    transactions = [future.result() for future in batch]
    assert len(set(transactions)) == 1, transactions
    assert stored(pg) == ["a", "b", "c"]


def test_a_conversation_held_elsewhere_is_sent_into_alone_after_the_batch(pg: Database) -> None:
    """Conversation 12 is held by another transaction: the batch does not wait for it (waiting
    for a second lock while holding the first could deadlock with another process); its piece
    runs in a transaction of its own once the holder is done, the others commit without it."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pg.write(concurrent_in=12):
            holding.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(timeout=10)
    pool = ThreadPoolExecutor(4)
    try:
        a, b, c = a_batch_of_three(pg, pool)
        eventually(lambda: (a.done() and c.done()) or None, "the batch commits without b")
        assert not b.done()
        assert stored(pg) == ["a", "c"]
        assert a.result() == c.result()
    finally:
        release.set()
        holder.join(timeout=10)
        pool.shutdown(wait=True)
    assert b.result() != a.result()
    assert stored(pg) == ["a", "b", "c"]


def test_a_deadlock_between_two_processes_batches_runs_the_pieces_again_alone(
    pg: Database, second_process: Database
) -> None:
    """Process one's batch changes row x then row y, process two's y then x: PostgreSQL finds
    the deadlock and ends one of the transactions. Its pieces run again, each alone, and every
    piece of both batches is stored exactly once."""
    with pg.write() as session:
        session.add_all(Organization(ext_id=name, name="", kind="employer") for name in ("x", "y"))
    both_wrote_their_first = threading.Barrier(2, timeout=10)

    def rename(row: str, tag: str, meet: bool) -> Callable[[Session], int]:
        met = [not meet]

        def work(session: Session) -> int:
            session.execute(
                update(Organization)
                .where(Organization.ext_id == row)
                .values(name=Organization.name + tag)
            )
            if not met[0]:  # only the first time: a piece run again goes straight through
                met[0] = True
                both_wrote_their_first.wait()
            return 0

        return work

    pool = ThreadPoolExecutor(6)
    futures = submit_in_order(
        pg,
        pool,
        [
            (hold_the_batch_until(pg, 2), 1),
            (rename("x", "1", meet=True), 11),
            (rename("y", "2", meet=False), 12),
        ],
    ) + submit_in_order(
        second_process,
        pool,
        [
            (hold_the_batch_until(second_process, 2), 2),
            (rename("y", "3", meet=True), 21),
            (rename("x", "4", meet=False), 22),
        ],
    )
    pool.shutdown(wait=True)
    assert [future.exception() for future in futures] == [None] * 6
    with pg.read() as session:
        names = {
            row.ext_id: row.name
            for row in session.execute(select(Organization.ext_id, Organization.name))
        }
    # Each change once, in whichever order the two processes' transactions committed.
    assert sorted(names["x"]) == ["1", "4"]
    assert sorted(names["y"]) == ["2", "3"]

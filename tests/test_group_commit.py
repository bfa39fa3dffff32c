"""Group commit: writes that come while one is writing share the next transaction, and each
still gets exactly its own outcome: stored once, or refused having stored nothing (both
databases; on PostgreSQL also: a piece whose conversation another transaction holds runs alone,
after the batch, and a piece caught in a deadlock runs again alone)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from jobchat.db.engine import Database
from jobchat.db.turn import WriteBusy
from jobchat.directory.models import Organization
from jobchat.errors import Forbidden
from jobchat.messages.models import Message
from tests.support import World, start


@pytest.fixture
def commits(db: Database) -> Iterator[list[int]]:
    """One entry per COMMIT the engine sends (reads end with one too: count before reading)."""
    seen: list[int] = []

    def count(_conn: Any) -> None:
        seen.append(1)

    event.listen(db.engine, "commit", count)
    yield seen
    event.remove(db.engine, "commit", count)


def add_org(name: str) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        session.add(Organization(ext_id=name, name=name, kind="employer"))
        session.flush()
        return f"stored {name}"

    return work


def refuse(session: Session) -> str:
    raise Forbidden("not you")


def write_then_refuse(session: Session) -> str:
    session.add(Organization(ext_id="half", name="half", kind="employer"))
    session.flush()
    raise Forbidden("changed my mind")


def break_down(session: Session) -> str:
    raise RuntimeError("a bug, having written nothing")


def stored(db: Database) -> list[str]:
    with db.read() as session:
        return sorted(session.scalars(select(Organization.ext_id)))


def while_the_turn_is_held(
    db: Database, works: list[Callable[[Session], str]], then: Callable[[], None] = lambda: None
) -> list[Future[str]]:
    """Submit each work from its own thread while this thread holds the write turn, so that they
    all queue (the first as the leader, waiting for the turn); call ``then``; then let the turn
    go."""
    pool = ThreadPoolExecutor(len(works))
    futures: list[Future[str]] = []
    with db.write():
        for work in works:
            futures.append(pool.submit(db.write_grouped, work, concurrent_in=1))
            time.sleep(0.02)  # in this order
        deadline = time.monotonic() + 5
        while len(db._grouped._queue) < len(works) and time.monotonic() < deadline:
            time.sleep(0.005)
        then()
    pool.shutdown(wait=True)
    return futures


def outcome(future: Future[str]) -> str:
    error = future.exception()
    return f"{type(error).__name__}" if error is not None else future.result()


def test_writes_that_queue_share_one_transaction(db: Database, commits: list[int]) -> None:
    futures = while_the_turn_is_held(db, [add_org(f"org-{i}") for i in range(8)])
    assert [outcome(f) for f in futures] == [f"stored org-{i}" for i in range(8)]
    assert len(commits) == 2  # the holder's, and the eight's together
    assert stored(db) == [f"org-{i}" for i in range(8)]


def test_a_refusal_that_wrote_nothing_leaves_the_others_in_the_batch(
    db: Database, commits: list[int]
) -> None:
    futures = while_the_turn_is_held(db, [add_org("a"), refuse, add_org("b")])
    assert [outcome(f) for f in futures] == ["stored a", "Forbidden", "stored b"]
    assert len(commits) == 2
    assert stored(db) == ["a", "b"]


@pytest.mark.parametrize(
    ("spoiler", "error"),
    [(write_then_refuse, "Forbidden"), (break_down, "RuntimeError")],
    ids=["wrote", "bug"],
)
def test_a_piece_that_spoils_the_transaction_is_rolled_back_and_the_others_run_alone(
    db: Database, commits: list[int], spoiler: Callable[[Session], str], error: str
) -> None:
    """It wrote before it raised, or raised something other than a refusal of ours (which may
    have left the session needing a rollback): the batch is rolled back, it gets its error and
    nothing of it is stored; the others are stored once each, in transactions of their own."""
    futures = while_the_turn_is_held(db, [add_org("a"), spoiler, add_org("b")])
    assert [outcome(f) for f in futures] == ["stored a", error, "stored b"]
    assert len(commits) == 3  # the holder's; a and b alone (the batch was rolled back)
    assert stored(db) == ["a", "b"]


def test_a_database_error_in_one_piece_rolls_the_batch_back_and_the_others_run_alone(
    db: Database,
) -> None:
    """A unique key broken by one piece leaves its session needing a rollback: the batch is
    rolled back (nothing is asked of the broken session), the piece gets the database's
    error, and the others are stored once each."""
    assert db.write_grouped(add_org("taken"), concurrent_in=1) == "stored taken"
    futures = while_the_turn_is_held(db, [add_org("a"), add_org("taken"), add_org("b")])
    assert [outcome(f) for f in futures] == ["stored a", "IntegrityError", "stored b"]
    assert stored(db) == ["a", "b", "taken"]


def test_writes_queued_past_the_turns_timeout_are_busy_and_change_nothing(
    db: Database,
) -> None:
    db.write_turn.timeout = 0.2
    futures = while_the_turn_is_held_for(db, 0.5, [add_org("a"), add_org("b")])
    assert [outcome(f) for f in futures] == ["WriteBusy", "WriteBusy"]
    assert stored(db) == []
    # The queue is left empty and unled: the next write goes through.
    assert db.write_grouped(add_org("c"), concurrent_in=1) == "stored c"


def while_the_turn_is_held_for(
    db: Database, seconds: float, works: list[Callable[[Session], str]]
) -> list[Future[str]]:
    pool = ThreadPoolExecutor(len(works))
    with db.write():
        futures = [pool.submit(db.write_grouped, work, concurrent_in=1) for work in works]
        time.sleep(seconds)
    pool.shutdown(wait=True)
    return futures


def test_past_the_most_waiting_a_write_is_refused_at_once(db: Database) -> None:
    db.write_turn.max_waiting = 2
    refused: list[str] = []

    def one_too_many() -> None:
        started = time.monotonic()
        with pytest.raises(WriteBusy):
            db.write_grouped(add_org("late"), concurrent_in=1)
        refused.append(f"refused after {time.monotonic() - started:.1f} s")

    # The leader waits for the turn and one more queues behind it: two waiting.
    futures = while_the_turn_is_held(db, [add_org("a"), add_org("b")], then=one_too_many)
    assert refused == ["refused after 0.0 s"]
    assert [outcome(f) for f in futures] == ["stored a", "stored b"]
    assert stored(db) == ["a", "b"]


def test_concurrent_sends_through_the_api_are_each_stored_once_and_answered_with_their_own(
    world: World, client: TestClient, db: Database
) -> None:
    """Both databases: 24 sends from 8 threads into two conversations, each answered 201 with
    its own body and id, and stored once."""
    conversations = [
        start(world["emp_admin"], "application", application=app) for app in ("app1", "app2")
    ]
    sender = world["emp_admin"]

    def send(n: int) -> tuple[int, str, int]:
        conv = conversations[n % len(conversations)]
        answer = sender.send(conv, f"message {n}")
        assert answer.status_code == 201, answer.text
        return conv, answer.json()["body"], answer.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(24)))
    assert sorted(body for _, body, _ in answers) == sorted(f"message {n}" for n in range(24))
    with db.read() as session:
        rows = session.execute(
            select(Message.id, Message.conversation_id, Message.body).where(
                Message.body.like("message %")
            )
        ).all()
    assert sorted((r.id, r.body) for r in rows) == sorted((i, b) for _, b, i in answers)
    assert len({r.body for r in rows}) == 24


def test_a_grouped_write_inside_another_is_refused_rather_than_waiting_for_itself(
    db: Database,
) -> None:
    def nested(session: Session) -> str:
        return db.write_grouped(add_org("inner"), concurrent_in=1)

    with pytest.raises(RuntimeError, match="inside another"):
        db.write_grouped(nested, concurrent_in=1)
    assert stored(db) == []
    assert db.write_grouped(add_org("after"), concurrent_in=1) == "stored after"

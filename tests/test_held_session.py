"""Writers keep their sessions and connections from one transaction to the next
(``jobchat.db.held_session``); each transaction must still start as a new session would:
nothing of the last one's objects, info or transaction left over, a connection a failure
spoiled replaced, and on PostgreSQL one that may have died tested first, as the pool would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Integer, String, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from jobchat.db import engine
from jobchat.db.engine import KEPT_WRITERS, Database
from jobchat.db.failures import is_outage


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "held_session_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String)


@pytest.fixture
def postgresql_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's kept connections")


@pytest.fixture
def notes(db: Database) -> Iterator[Database]:
    _Base.metadata.create_all(db.engine)
    yield db
    _Base.metadata.drop_all(db.engine)


def _write(db: Database, work: Callable[[Session], None]) -> None:
    with db.write() as session:
        work(session)


def _driver(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def test_writes_share_one_connection_and_start_afresh(notes: Database) -> None:
    with notes.write() as session:
        first = session
        connection = _driver(session)
        session.info["left_over"] = True
        note = Note(text="one")
        session.add(note)
    with notes.write() as session:
        assert session is first and _driver(session) is connection
        assert "left_over" not in session.info
        assert list(session.identity_map.values()) == []
        assert note not in session  # detached at the end of its transaction, as ever
        assert note.text == "one"  # and loaded (expire_on_commit is off)


def test_a_kept_session_reads_what_another_connection_wrote_since(
    notes: Database, database_url: str
) -> None:
    with notes.write() as session:
        session.add(Note(id=1, text="before"))
    other = Database(database_url)
    try:
        with other.write() as session:
            session.get_one(Note, 1).text = "after"
    finally:
        other.dispose()
    with notes.write() as session:
        assert session.get_one(Note, 1).text == "after"


def test_a_failed_write_rolls_back_and_the_next_one_writes(notes: Database) -> None:
    def fail_after_writing(session: Session) -> None:
        session.add(Note(id=1, text="lost"))
        session.flush()
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        _write(notes, fail_after_writing)
    with notes.write() as session:
        assert session.get(Note, 1) is None
        session.add(Note(id=1, text="kept"))
    with notes.read() as session:
        assert session.get_one(Note, 1).text == "kept"


def test_a_connection_invalidated_under_a_write_is_not_kept(notes: Database) -> None:
    with notes.write() as session:
        lost = _driver(session)

    # As SQLAlchemy leaves a connection it found dead.
    def fail_invalidated(session: Session) -> None:
        session.connection().invalidate()
        raise RuntimeError

    with pytest.raises(RuntimeError):
        _write(notes, fail_invalidated)
    with notes.write() as session:
        assert _driver(session) is not lost
        session.add(Note(id=2, text="written"))
    with notes.read() as session:
        assert session.get_one(Note, 2).text == "written"


def test_a_write_inside_a_write_gets_a_session_of_its_own(
    notes: Database, database_url: str
) -> None:
    # The turn is reentrant; the database's lock is not (SQLite's write lock, PostgreSQL's
    # writers' advisory lock, reentrant only on the connection holding it), so the inner write
    # waits for it in vain on a connection of its own, as it always did, and is refused as busy.
    # Handed the outer's session, it would have been refused for beginning a transaction inside
    # one instead on SQLite, and on PostgreSQL would have written inside the outer transaction.
    impatient = Database(database_url, write_timeout_seconds=0.2)
    try:
        with impatient.write() as outer:
            outer.add(Note(id=3, text="outer"))
            outer.flush()
            with pytest.raises(OperationalError, match=r"locked|lock timeout"):
                _write(impatient, lambda _inner: None)
    finally:
        impatient.dispose()
    with notes.read() as session:
        assert session.get_one(Note, 3).text == "outer"


def test_dispose_gives_the_connection_back(notes: Database) -> None:
    with notes.write() as session:
        session.add(Note(text="x"))
    assert notes.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    notes.dispose()
    assert notes.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with notes.write() as session:  # and a write after it takes one again
        session.add(Note(text="y"))


def _backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(db: Database, pid: int) -> None:
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()


@pytest.mark.usefixtures("postgresql_only")
def test_a_kept_connection_that_died_unused_is_replaced_before_a_write_meets_it(
    notes: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with notes.write() as session:
        dead = _backend_pid(session)
    _terminate(notes, dead)  # the database restarted, say, while the connection sat kept
    # Kept longer than the pool would trust a connection unused.
    monkeypatch.setattr(engine, "IDLE_PING_SECONDS", 0.0)
    _write_elsewhere(notes, dead, 4)


@pytest.mark.usefixtures("postgresql_only")
def test_a_kept_connection_used_a_moment_ago_is_trusted_until_one_is_found_dead(
    notes: Database,
) -> None:
    # As for the pool's connections: a write that meets a dead connection it had no reason to
    # test fails as an outage (503 with Retry-After), having written nothing, and the next
    # write does not meet it again.
    with notes.write() as session:
        dead = _backend_pid(session)
    _terminate(notes, dead)
    with pytest.raises(OperationalError) as met, notes.write() as session:
        session.add(Note(id=5, text="lost"))
    assert is_outage(met.value)
    _write_elsewhere(notes, dead, 5)


def _write_elsewhere(db: Database, dead: int, note_id: int) -> None:
    """A write on a backend other than the ``dead`` one, and what it wrote read back."""
    with db.write() as session:
        assert _backend_pid(session) != dead
        session.add(Note(id=note_id, text="written"))
    with db.read() as session:
        assert session.get_one(Note, note_id).text == "written"


@pytest.mark.usefixtures("postgresql_only")
def test_writers_side_by_side_each_get_a_session_and_a_few_are_kept(notes: Database) -> None:
    writers = KEPT_WRITERS + 2
    inside = threading.Barrier(writers, timeout=10)
    sessions: list[Session] = []

    def write(conversation: int) -> None:
        with notes.write(concurrent_in=conversation) as session:
            sessions.append(session)
            inside.wait()  # every writer in its transaction at once
            session.add(Note(id=100 + conversation, text="side by side"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(session) for session in sessions}) == writers
    assert notes.engine.pool.checkedout() == KEPT_WRITERS  # type: ignore[attr-defined]
    with notes.read() as session:
        assert len(session.query(Note).all()) == writers


def test_a_pool_of_one_keeps_no_writer_connection(notes: Database, database_url: str) -> None:
    # A kept connection is out of the pool: with the pool's only one kept, the read after the
    # write would wait for it until the pool's timeout.
    tiny = Database(database_url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        with tiny.write() as session:
            session.add(Note(id=6, text="written"))
        assert tiny.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with tiny.read() as session:
            assert session.get_one(Note, 6).text == "written"
    finally:
        tiny.dispose()

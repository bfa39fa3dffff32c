"""SQLite's writers share one kept session and its connection (``jobchat.db.held_session``); each
transaction must still start as a new session would: nothing of the last one's objects, info or
transaction left over, and a connection a failure spoiled replaced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Integer, String
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from jobchat.db.engine import Database

pytestmark = pytest.mark.usefixtures("sqlite_only")


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "held_session_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String)


@pytest.fixture
def sqlite_only(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's writers each have a session of their own")


@pytest.fixture
def notes(db: Database) -> Iterator[Database]:
    _Base.metadata.create_all(db.engine)
    yield db
    _Base.metadata.drop_all(db.engine)


def _write(db: Database, work: Callable[[Session], None]) -> None:
    with db.write() as session:
        work(session)


def _sqlite(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def test_writes_share_one_connection_and_start_afresh(notes: Database) -> None:
    with notes.write() as session:
        first = session
        connection = _sqlite(session)
        session.info["left_over"] = True
        note = Note(text="one")
        session.add(note)
    with notes.write() as session:
        assert session is first and _sqlite(session) is connection
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
        lost = _sqlite(session)

    # As SQLAlchemy leaves a connection it found dead.
    def fail_invalidated(session: Session) -> None:
        session.connection().invalidate()
        raise RuntimeError

    with pytest.raises(RuntimeError):
        _write(notes, fail_invalidated)
    with notes.write() as session:
        assert _sqlite(session) is not lost
        session.add(Note(id=2, text="written"))
    with notes.read() as session:
        assert session.get_one(Note, 2).text == "written"


def test_a_write_inside_a_write_gets_a_session_of_its_own(
    notes: Database, database_url: str
) -> None:
    # The turn is reentrant; SQLite's lock is not, so the inner write waits for it in vain on a
    # connection of its own, as it always did, and is refused as busy. Handed the outer's
    # session, it would have been refused for beginning a transaction inside one instead.
    impatient = Database(database_url, write_timeout_seconds=0.2)
    try:
        with impatient.write() as outer:
            outer.add(Note(id=3, text="outer"))
            outer.flush()
            with pytest.raises(OperationalError, match="locked"):
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

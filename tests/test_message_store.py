"""A new message's row goes in by one statement (jobchat.messages.store), not the unit of work:
the object is made after it as loaded, with nothing left to flush, the idempotency key is kept
by ON CONFLICT DO NOTHING, and a send that loses a race for its key is answered from the one
that won it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.orm import Session

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.messages import actions as message_actions
from jobchat.messages.models import Channel, Delivery, DeliveryStatus, Message
from jobchat.messages.queries import sent_with_key
from jobchat.messages.store import NewMessage, Stored, store_message
from tests.support import As, World, start

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _message(author: User, conversation_id: int, key: str | None, body: str = "Hi") -> NewMessage:
    return NewMessage(
        conversation_id=conversation_id,
        author=author,
        body=body,
        subject=None,
        channel=Channel.app,
        created_at=NOW,
        idempotency_key=key,
    )


def _stored(stored: Stored) -> Message:
    assert stored.message is not None
    return stored.message


def _author(session: Session, ext_id: str) -> User:
    return session.scalars(select(User).where(User.ext_id == ext_id)).one()


def _keyed(db: Database, key: str) -> list[tuple[int, str]]:
    with db.read() as session:
        rows = session.execute(
            select(Message.conversation_id, Message.body).where(Message.idempotency_key == key)
        )
        return [(conv_id, body) for conv_id, body in rows]


def test_a_stored_message_is_loaded_with_nothing_left_to_flush(world: World, db: Database) -> None:
    conv_id = start(world["emp_team"], "application", application="app1")
    with db.write() as session:
        author = _author(session, "emp_team")
        statements: list[str] = []

        def heard(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        message = _stored(store_message(session, _message(author, conv_id, "once")))
        assert message.id is not None
        assert message in session and message not in session.new and not session.dirty
        state = inspect(message)
        assert state.persistent and not state.modified and not state.expired_attributes
        assert session.get(Message, message.id) is message
        # Every column was given or started empty, and its author and deliveries are known:
        # reading them asks the database nothing, and a flush has nothing to write.
        event.listen(db.engine, "before_cursor_execute", heard)
        try:
            assert (message.deleted_at, message.deleted_by_id) == (None, None)
            assert (message.author, message.deliveries) == (author, [])
            assert (message.body, message.channel, message.created_at) == ("Hi", Channel.app, NOW)
            session.flush()
        finally:
            event.remove(db.engine, "before_cursor_execute", heard)
        assert statements == []
        stored_id = message.id
    with db.read() as session:
        row = session.get_one(Message, stored_id)
        assert (row.body, row.idempotency_key, row.created_at) == ("Hi", "once", NOW)


def test_a_key_the_author_used_already_writes_nothing(world: World, db: Database) -> None:
    conv_id = start(world["emp_team"], "application", application="app1")
    with db.write() as session:
        author = _author(session, "emp_team")
        assert store_message(session, _message(author, conv_id, "k1", "first")).message
        assert not store_message(session, _message(author, conv_id, "k1", "second")).message
        # The transaction goes on as if the second had not been tried.
        assert store_message(session, _message(author, conv_id, None, "third")).message
        assert store_message(session, _message(author, conv_id, None, "fourth")).message
        other = _author(session, "emp_admin")
        assert store_message(session, _message(other, conv_id, "k1", "another author's")).message
    assert sorted(body for _, body in _keyed(db, "k1")) == ["another author's", "first"]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 4


def _index(db: Database) -> dict[int, str]:
    """The search index's entries: the words of each message indexed, by its id."""
    key = "message_id" if db.engine.dialect.name == "postgresql" else "rowid"
    with db.read() as session:
        rows = session.execute(text(f"SELECT {key}, words FROM message_search"))
        return {int(message_id): str(words) for message_id, words in rows}


def test_a_stored_message_is_indexed_with_its_files_names_once(world: World, db: Database) -> None:
    conv_id = start(world["emp_team"], "application", application="app1")
    with db.write() as session:
        author = _author(session, "emp_team")
        new = _message(author, conv_id, "k1", "Interview on Monday")
        first = _stored(store_message(session, new, filenames=["Timesheet.pdf"]))
        # The same key again: neither the message nor an entry for it is written.
        again = _message(author, conv_id, "k1", "Interview Friday")
        assert store_message(session, again).message is None
        second = _stored(
            store_message(session, _message(author, conv_id, None, "Directions attached"))
        )
        ids = (first.id, second.id)
    assert _index(db) == {
        ids[0]: "interview monday timesheet pdf",
        ids[1]: "directions attached",
    }


def test_deliveries_are_stored_with_their_messages_id(world: World, db: Database) -> None:
    conv_id = start(world["emp_team"], "application", application="app1")
    with db.write() as session:
        author = _author(session, "emp_team")
        recipient = _author(session, "cand")
        delivery = Delivery(
            recipient_id=recipient.id,
            recipient=recipient,
            channel=Channel.email,
            address="cand@example.com",
            status=DeliveryStatus.queued,
            next_attempt_at=NOW,
            created_at=NOW,
            updated_at=NOW,
        )
        message = _stored(
            store_message(session, _message(author, conv_id, None), deliveries=[delivery])
        )
        assert message.deliveries == [delivery] and delivery in session.new
        session.flush()
        assert delivery.id is not None and delivery.message_id == message.id
        message_id = message.id
    with db.read() as session:
        stored = session.scalars(select(Delivery).where(Delivery.message_id == message_id)).all()
        assert [d.address for d in stored] == ["cand@example.com"]


def test_a_send_that_loses_the_race_for_its_key_is_answered_from_the_winner(
    world: World,
    db: Database,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same key sent into two conversations at once through two server processes
    (PostgreSQL writes them side by side; one process would put both in one transaction): both
    look it up and find nothing, both insert; the database keeps the first and the second
    writes nothing and is told the key went with another message (409), not a 500."""
    if db.is_sqlite:
        pytest.skip("SQLite writes one send at a time: the lookup always finds the winner")
    first = start(world["emp_team"], "application", application="app1")
    second = start(world["emp_team"], "application", application="app2")
    both_looked = threading.Barrier(2)

    def look_then_wait(session: Session, author_id: int, key: str) -> Message | None:
        found = sent_with_key(session, author_id, key)
        if key == "raced" and found is None:
            both_looked.wait(timeout=10)
        return found

    monkeypatch.setattr(message_actions, "sent_with_key", look_then_wait)
    answers: dict[int, httpx.Response] = {}
    other_db = Database(settings.database_url)
    with TestClient(create_app(settings, db=other_db, clock=clock)) as other_process:
        senders = {first: world["emp_team"], second: As(other_process, world["emp_team"].token)}

        def send(conv_id: int) -> Callable[[], None]:
            def run() -> None:
                answers[conv_id] = senders[conv_id].send(conv_id, "Once", idempotency_key="raced")

            return run

        threads = [threading.Thread(target=send(c)) for c in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    other_db.dispose()
    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [201, 409], [a.text for a in answers.values()]
    refused = next(a for a in answers.values() if a.status_code == 409)
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    won = next(c for c, a in answers.items() if a.status_code == 201)
    assert _keyed(db, "raced") == [(won, "Once")]

"""jobchat.db.loaded: an object read by one prepared statement is what Session.get gives: the
same values, persistent and clean, its relationships and deferred columns loaded when read, one
per identity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, inspect, select

from jobchat.conversations.models import Conversation
from jobchat.db.engine import Database
from jobchat.db.loaded import ByKey, Loader
from jobchat.db.prepared import Prepared
from jobchat.directory.models import Organization, User
from jobchat.messages.models import Message

USERS = ByKey(User)
MESSAGES = ByKey(Message)
HELD = datetime(2026, 12, 6, 7, 30, 5, 250000, tzinfo=UTC)


@pytest.fixture
def user_id(db: Database) -> int:
    with db.write() as session:
        org = Organization(ext_id="acme", name="Acme", kind="employer")
        session.add(org)
        session.flush()
        user = User(
            kind="staff",
            ext_id="u1",
            name="Ada Ü",
            email="ada@example.test",
            phone=None,
            timezone="Europe/Berlin",
            timezone_given=True,
            email_notifications=False,
            quiet_start="22:00",
            quiet_end="07:00",
            notify_held_until=HELD,
            organization_id=org.id,
            role="admin",
        )
        session.add(user)
        session.flush()
        return user.id


def _columns(obj: object) -> dict[str, Any]:
    return {attr.key: getattr(obj, attr.key) for attr in inspect(type(obj)).column_attrs}


def test_the_object_holds_what_session_get_loads(db: Database, user_id: int) -> None:
    with db.read() as session:
        expected = _columns(session.get_one(User, user_id))
    with db.read() as session:
        user = USERS.get(session, user_id)
        assert user is not None
        assert _columns(user) == expected
        assert user.notify_held_until == HELD and user.notify_held_until.tzinfo is UTC
        assert (user.timezone_given, user.email_notifications, user.push_notifications) == (
            True,
            False,
            True,
        )
        state = inspect(user)
        assert state.persistent and not state.modified and not state.expired_attributes
        # One object per identity: Session.get finds it, and it finds one loaded before.
        assert session.get(User, user_id) is user
        assert USERS.get(session, user_id) is user
        assert USERS.get(session, user_id + 1000) is None


def test_it_is_written_only_when_changed(db: Database, user_id: int) -> None:
    statements: list[str] = []

    def heard(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", heard)
    try:
        with db.write() as session:
            assert USERS.get(session, user_id) is not None
        assert not [s for s in statements if s.startswith("UPDATE")]
        with db.write() as session:
            user = USERS.get(session, user_id)
            assert user is not None
            user.name = "Ada Lovelace"
    finally:
        event.remove(db.engine, "before_cursor_execute", heard)
    assert len([s for s in statements if s.startswith("UPDATE users")]) == 1
    with db.read() as session:
        assert session.scalar(select(User.name).where(User.id == user_id)) == "Ada Lovelace"


def test_relationships_load_when_read(db: Database, user_id: int) -> None:
    with db.write() as session:
        conv = Conversation(
            kind="job_internal", context_key="test", created_at=HELD, last_activity_at=HELD
        )
        session.add(conv)
        session.flush()
        message = Message(
            conversation_id=conv.id, author_id=user_id, body="hi", channel="app", created_at=HELD
        )
        session.add(message)
        session.flush()
        message_id = message.id
    with db.read() as session:
        loaded = MESSAGES.get(session, message_id)
        assert loaded is not None
        assert loaded.author is not None and loaded.author.name == "Ada Ü"
        assert loaded.deliveries == []


def test_a_deferred_column_is_selected_when_asked_for_and_loaded_when_read_if_not(
    db: Database, user_id: int
) -> None:
    with db.write() as session:
        conv = Conversation(
            kind="job_internal", context_key="test", created_at=HELD, last_activity_at=HELD
        )
        session.add(conv)
        session.flush()
        conv_id = conv.id
    statements: list[str] = []

    def heard(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for undefer, extra in ((("job_status",), 0), ((), 1)):
        loader = Loader(Conversation, undefer=undefer)
        chosen = Prepared(select(*loader.columns).where(Conversation.id == bindparam("id")))
        with db.read() as session:
            (row,) = chosen.run(session.connection(), {"id": conv_id}).rows
            loaded = loader.join(session, row)
            event.listen(db.engine, "before_cursor_execute", heard)
            try:
                before = len(statements)
                # Conversation.job_status is a column_property (a subquery), deferred.
                assert loaded.job_status is None  # no job
                assert len(statements) - before == extra
            finally:
                event.remove(db.engine, "before_cursor_execute", heard)
            assert loader.join(session, row) is loaded

"""PostgreSQL: the send's one statement for the conversation, its members and the lock of the
users whose badge totals it shifts next (jobchat.messages.bump). Sends into different
conversations share staff; their users' rows must be locked before the UPDATE of the totals
(in id order, or two sends could deadlock), and only theirs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from jobchat.conversations.models import Conversation, Member
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.messages.bump import bump
from tests.support import World, start

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _locked_elsewhere(db: Database, user_id: int) -> bool:
    """Whether another transaction holds ``user_id``'s row (asked without waiting)."""
    with db.engine.connect() as conn:
        try:
            conn.execute(
                text("SELECT id FROM users WHERE id = :id FOR NO KEY UPDATE NOWAIT"),
                {"id": user_id},
            )
        except OperationalError as exc:
            if "could not obtain lock" not in str(exc):
                raise
            return True
        finally:
            conn.rollback()
    return False


def _ids(session: Session, *ext_ids: str) -> list[int]:
    return [session.scalars(select(User.id).where(User.ext_id == e)).one() for e in ext_ids]


@pytest.mark.parametrize("writer_had_unread", [False, True])
def test_the_bump_locks_the_members_users_and_the_writers_only_if_asked(
    world: World, db: Database, writer_had_unread: bool
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: it locks no rows")
    conv_id = start(world["emp_team"], "application", application="app1")
    with db.read() as session:
        writer_id, *others = _ids(session, "emp_team", "emp_admin", "cand")
        members = set(
            session.scalars(select(Member.user_id).where(Member.conversation_id == conv_id))
        )
        outsider = session.scalars(select(User.id).where(User.id.not_in(members))).first()
    assert set(others) <= members and outsider is not None
    with db.write() as session:
        conv = session.get_one(Conversation, conv_id)
        writer = session.get_one(Member, (conv_id, writer_id))
        bumped = bump(
            session,
            conv,
            writer,
            conv.last_message_id or 0,
            active_at=NOW,
            notify_due_at=NOW,
            lock_writer=writer_had_unread,
        )
        assert bumped.users_locked
        assert set(bumped.counts) == members - {writer_id}
        for user_id in members - {writer_id}:
            assert _locked_elsewhere(db, user_id), user_id
        assert _locked_elsewhere(db, writer_id) is writer_had_unread
        assert not _locked_elsewhere(db, outsider)
    # The commit lets them go.
    assert not any(_locked_elsewhere(db, user_id) for user_id in members)

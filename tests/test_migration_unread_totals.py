"""Migration 0003 adds the users' unread totals and fills them in from the member rows."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select, text, update

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.directory.models import User
from tests.support import World, start
from tests.test_invariants import check_badges, check_unread_totals


def test_the_unread_totals_are_backfilled(world: World, db: Database, clock: FrozenClock) -> None:
    case = start(world["emp_admin"], "case", application="app1")
    partners = start(world["emp_admin"], "job_partners", job="job1")
    for conv_id, role in [(case, "emp_admin"), (case, "cand"), (partners, "emp_team")]:
        clock.advance(seconds=1)
        assert world[role].send(conv_id, "hello").status_code == 201
    with db.write() as session:
        assert session.scalar(select(User.unread_messages).where(User.ext_id == "sp_in")) == 3
        # Zeroed, so that the backfill has something to do.
        session.execute(update(User).values(unread_conversations=0, unread_messages=0))
    config = alembic_config(db.engine.url.render_as_string(hide_password=False))
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
            command.upgrade(config, "0003")
            # Plain SQL: the models describe the newest schema, not 0003's.
            backfilled = connection.execute(
                text("SELECT unread_messages FROM users WHERE ext_id = 'sp_in'")
            ).scalar()
        assert backfilled == 3
    finally:
        # Back to the newest schema (other tests share it on PostgreSQL).
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    db.engine.dispose()
    with db.read() as session:
        check_unread_totals(session)
    check_badges(world)

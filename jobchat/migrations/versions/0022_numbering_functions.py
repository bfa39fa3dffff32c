"""numbering functions: PostgreSQL moves queued events into ``events`` through plpgsql

What a writer sends with its COMMIT to number its queued events (``jobchat.events.sequencer``)
was a query string of four statements, and PostgreSQL parses and plans a query string afresh
every time. The same statements inside plpgsql functions are planned once a connection and kept;
the query string shrinks to three short calls. A transaction that queues two events and numbers
them cost the database 752-824 us of CPU before, 564-672 after (on a machine where a whole send
costs it about 2.5 ms); a send's backends, 15% fewer instructions (bench/bench_pg_instructions.py).

Each statement of a function that is not declared STABLE or IMMUTABLE reads with a snapshot of
its own, as each statement of a query string did: the move that follows the wait for the lock
sees what others committed meanwhile.

1784902513 is the sequencers' lock key, ``jobchat.events.sequencer.SEQUENCER_LOCK_KEY``
(0x6A637371, "jcsq"), written out: a migration records what it did and does not read today's
code. tests/test_pg_concurrent_writes holds the two to the same key.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Moves every queued row into ``events``, numbering them in queue order, and returns them. The
# caller holds the sequencers' lock. The ids are drawn after the sort (PostgreSQL evaluates a
# volatile select list after ORDER BY), so they follow ``seq``. Each row moves once: a row another
# sequencer deleted first is not returned by this DELETE.
_MOVE = """
CREATE FUNCTION jobchat_move_queued_events()
RETURNS TABLE (id bigint, type varchar, conversation_id bigint, user_id bigint, data json,
               extras json)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH moved AS (
        DELETE FROM event_queue
        RETURNING seq, type, conversation_id, user_id, message_id, data, extras, created_at
    )
    INSERT INTO events (id, type, conversation_id, user_id, message_id, data, extras,
                        created_at)
    SELECT nextval('events_id_seq'), type, conversation_id, user_id, message_id, data, extras,
           created_at
    FROM moved ORDER BY seq
    RETURNING events.id, events.type, events.conversation_id, events.user_id, events.data,
              events.extras;
END
$$
"""

# Before the writer's COMMIT: number the queue now if the sequencers' lock is free (it is let go
# at that commit), else note that it was not, for the call after the commit; never wait (the
# writer holds row locks other writers want).
_BEFORE = """
CREATE FUNCTION jobchat_number_before_commit()
RETURNS TABLE (id bigint, type varchar, conversation_id bigint, user_id bigint, data json,
               extras json)
LANGUAGE plpgsql AS $$
DECLARE
    got boolean := pg_try_advisory_xact_lock(1784902513);
BEGIN
    PERFORM set_config('jobchat.numbered', got::text, false);
    IF got THEN
        RETURN QUERY SELECT * FROM jobchat_move_queued_events();
    END IF;
END
$$
"""

# After the COMMIT, in a transaction of its own: if the writer did not number before, wait for
# the lock and number.
_AFTER = """
CREATE FUNCTION jobchat_number_after_commit()
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('jobchat.numbered') = 'false' THEN
        PERFORM pg_advisory_xact_lock(1784902513);
        PERFORM count(*) FROM jobchat_move_queued_events();
    END IF;
END
$$
"""

_FUNCTIONS = (
    "jobchat_number_after_commit()",
    "jobchat_number_before_commit()",
    "jobchat_move_queued_events()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in (_MOVE, _BEFORE, _AFTER):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in _FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")

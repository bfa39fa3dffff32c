"""Numbering PostgreSQL's events in commit order, after their writers have committed.

Clients and hubs read the stream as "events with id > the last I saw", so ids must become
visible in increasing order: an event 7 that commits after 8 is never seen by a reader already
past 8. While every writer took one lock in turn, the events sequence did that by itself. Senders
into different conversations now write side by side (``Database.write(concurrent_in=...)``) and
commit in any order, so on PostgreSQL ``emit`` queues its rows in ``event_queue`` instead, and
once the writer has committed, ``NUMBER_QUEUED`` (sent in the round trip of the writer's own
COMMIT, on its connection: ``Database.write``) moves every queued row into ``events``, numbering
them there. Sequencers take a lock of their own, one at a time, and commit before letting go of
it: each numbers after the one before and is visible before the next starts, so ids appear in
order. Under load one sequencer moves everyone's rows and the others find the queue empty. Rows
of one conversation keep their order (``seq``), as its writers took turns.

A process that dies between its commit and its sequencing leaves rows queued: the next writer
anywhere moves them, and the stream's hub looks for them when it finds nothing new.

SQLite has one writer at a time: ``emit`` writes to ``events`` directly there, and none of this
runs.
"""

from __future__ import annotations

import itertools

from sqlalchemy import Engine, exists, select, text
from sqlalchemy.orm import Session

from jobchat.db.engine import mark_events_rewritten
from jobchat.events.models import QueuedEvent

# Only sequencers take it: writers never wait for numbering, only for each other. Migration
# 0022's functions take it by its number, 1784902513: a new key needs a migration of its own.
SEQUENCER_LOCK_KEY = 0x6A637371  # "jcsq"

# Moving every queued row into ``events``, numbered in queue order, is the function
# ``jobchat_move_queued_events()`` (migration 0022), as are the writer's numbering before and
# after its commit below: statements in plpgsql are planned once a connection, where a query
# string is parsed and planned each time it is sent.
_LOCK = f"SELECT pg_advisory_xact_lock({SEQUENCER_LOCK_KEY})"
_MOVE = "SELECT count(*) FROM jobchat_move_queued_events()"
# One round trip, one (implicit) transaction: a query string of several statements runs as one,
# each statement with a snapshot of its own, so the move sees what committed while it waited.
_SEQUENCE = f"{_LOCK}; {_MOVE}"

# What a writer that queued events sends with its own COMMIT (``Database.write``), in one round
# trip: ``BEFORE_COMMIT; COMMIT; AFTER_COMMIT``.
#
# Before: if the sequencers' lock is free, the writer takes it and numbers the queue inside its
# own transaction; the lock is let go only after that commit, so these ids, like any
# sequencer's, are visible before the next sequencer starts. One commit (one WAL flush) then
# does both, where a sequencer of its own would flush a second time. If the lock is taken it
# does not wait (it holds row locks other writers want), and notes so in a session setting
# (``jobchat.numbered``).
#
# After: PostgreSQL runs the statements after a COMMIT in a query string as an implicit
# transaction of their own, and only if the COMMIT succeeded. When the writer did not number
# before, it waits for the lock and numbers as ``sequence`` does; when it did, the call does
# nothing (a transaction that writes nothing has nothing to flush).
#
# The rows numbered before the commit come back (the first result of the query string): the
# real-time stream of this process is handed them as committed, in place of reading them back
# (``Database.write``, ``jobchat.realtime.hub``). They are every row queued by then, this
# writer's and others', numbered in one run of the sequence: nothing can come between them.
# (In id order: RETURNING's order is not promised, so they are sorted.)
BEFORE_COMMIT = "SELECT * FROM jobchat_number_before_commit()"
AFTER_COMMIT = "SELECT jobchat_number_after_commit()"
NUMBER_QUEUED = (BEFORE_COMMIT, AFTER_COMMIT)


def sequence(engine: Engine) -> None:
    """Move every queued event into ``events``, in order (rows a writer left: see
    ``sequence_stranded``)."""
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.exec_driver_sql(_SEQUENCE)
    vacuum_now_and_then(engine)


def vacuum_now_and_then(engine: Engine) -> None:
    """After a move: vacuum the queue every ``VACUUM_EVERY`` moves of this process."""
    if next(_runs) % VACUUM_EVERY == 0:
        with engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.exec_driver_sql(_VACUUM)


# Every row of the queue is deleted milliseconds after it is written, and the move reads the
# whole table: its dead rows piled up until autovacuum came (once a minute at best; it had not
# come after 2,400 sends), each move reading them all again (1.2 ms of the database's CPU per
# send at 2,400; 0.06 ms vacuumed). So each process vacuums it every VACUUM_EVERY moves: a few
# hundred dead rows, well under a millisecond. SKIP_LOCKED: if another is vacuuming it, fine.
VACUUM_EVERY = 256
_VACUUM = "VACUUM (SKIP_LOCKED) event_queue"
_runs = itertools.count(1)


def sequence_within(session: Session) -> None:
    """Number what is queued in the caller's own transaction, so that what it does next to
    ``events`` (blank a message's copies, erase a person's events) finds every event, numbered
    or not. For writers that have the database to themselves (``Database.write()`` without
    ``concurrent_in``): no writer can queue more until they commit. Holds the sequencers' lock
    until then, so nobody numbers in between.

    Those writers change or delete events already written (the reason they number first):
    their commit hands the real-time stream no events, so it reads them as they now are."""
    mark_events_rewritten(session)
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(text(_LOCK))
    session.execute(text(_MOVE))


def sequence_stranded(engine: Engine) -> bool:
    """Number events a writer queued and never numbered (it died in between); whether any were
    found. One cheap read when there are none."""
    with engine.connect() as connection:
        # Outside a transaction: the stream runs this whenever it finds nothing new (once a
        # second when idle), and a transaction's BEGIN and ROLLBACK would be two round trips
        # more. (While psycopg prepared statements of its own, that ROLLBACK also made it
        # deallocate every statement prepared on the connection: jobchat.db.pg_prepared.)
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        if not autocommit.scalar(select(exists().select_from(QueuedEvent))):
            return False
    sequence(engine)
    return True

"""Engines and transactions.

``Database.read()`` and ``Database.write()`` are the only ways code gets a session, and
``Database.reading()`` a bare connection for the hottest reads. On SQLite a write transaction
starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail at
once with "database is locked" when another writer got there first, while an immediate one
waits its turn (``busy_timeout``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from jobchat.db import json_text, undo
from jobchat.db.failures import describe, is_busy, is_outage
from jobchat.db.group_commit import GroupCommit
from jobchat.db.held_session import HeldSessions
from jobchat.db.pg_prepared import disown_preparing
from jobchat.db.prepared import Prepared, run_plain, run_script
from jobchat.db.reading import Reading
from jobchat.db.turn import WriteSlots, WriteTurn

# The execution option that makes a SQLite transaction begin with BEGIN IMMEDIATE.
IMMEDIATE = "jobchat_begin_immediate"
_DEADLINE = "jobchat_write_deadline"
_BUSY_MS = "jobchat_busy_timeout_ms"
WRITE_LOCK_KEY = 0x6A6F6263  # "jobc": the advisory lock key writers take on PostgreSQL
# With a conversation's id, the two-key advisory lock a concurrent writer takes on PostgreSQL
# (see Database.write); two-key locks never collide with the one-key WRITE_LOCK_KEY.
CONVERSATION_LOCK_CLASS = 0x6A636376  # "jccv"
# How many of this process's writers may wait for the turn at once (see jobchat.db.turn); the
# app gives reads as many threads again (jobchat.app), so waiting writers never starve them.
MAX_WRITE_WAITERS = 32
# PostgreSQL writers into one conversation each (``write(concurrent_in=...)``) that may write at
# once in one process: a group commit's batch and the sends it left out, each waiting for a
# conversation another process holds. Each holds a pooled connection (SQLAlchemy's default
# pool: 5 + 10 overflow), so a few are left for reads, the hub and the worker even when every
# writer waits for a lock.
CONCURRENT_WRITERS = 8
# PostgreSQL write sessions (and their connections) kept between transactions (see
# jobchat.db.held_session): enough for one exclusive writer and a few side by side; more at
# once make their own. Kept connections are out of the pool the whole time, so at least one of
# the pool's own (five by default) is always left to the rest (see _kept_writers).
KEPT_WRITERS = 4
# A connection attempt to PostgreSQL that has not succeeded by then counts as an outage.
CONNECT_TIMEOUT_SECONDS = 5
# A pooled PostgreSQL connection unused for this long is tested before it is handed out (see
# _PingIfStale); one in use more recently is trusted.
IDLE_PING_SECONDS = 5.0
_IDLE_SINCE = "jobchat_idle_since"
# A write that holds the turn this long is logged (see _note_if_slow), with this many frames.
SLOW_WRITE_SECONDS = 0.25
_SLOW_WRITE_FRAMES = 4
_EVENTS_WRITTEN = "jobchat_events_written"
_EVENTS_REWRITTEN = "jobchat_events_rewritten"
_JOBS_WRITTEN = "jobchat_jobs_written"
_SEQUENCE = "jobchat_sequence_events"
_NUMBERED = "jobchat_events_numbered"
_READ_ONLY = "jobchat_read_only"
_WRITE_STATEMENTS = "jobchat_write_statements"
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}

log = logging.getLogger(__name__)
T = TypeVar("T")


def mark_events_written(session: Session, written: Any | None = None) -> None:
    """Note that this transaction adds events, so that its commit wakes the real-time stream.

    ``written``: the event as it was stored (its id and columns, as the stream would read it
    back), or None when that is not known. The commit hands the listeners every event of the
    transaction in order, or None if any one of them was not known: they then read the table.
    """
    known = session.info.get(_EVENTS_WRITTEN, [])
    if known is None or written is None:
        session.info[_EVENTS_WRITTEN] = None
    else:
        known.append(written)
        session.info[_EVENTS_WRITTEN] = known


def mark_events_rewritten(session: Session) -> None:
    """Note that this transaction changes or deletes events already written (a message deleted
    for everyone, an erasure, retention): if it adds events too, its commit hands the listeners
    none of them, only the news, and they read the table, which alone has every event as it now
    is."""
    session.info[_EVENTS_REWRITTEN] = True


def mark_events_queued(
    session: Session, numbering: tuple[str, str], afterwards: Callable[[Engine], None]
) -> None:
    """Note that this transaction queued events that ``numbering`` (SQL: before and after the
    COMMIT, sent with it in one round trip) numbers; ``afterwards`` is then called with the
    engine (PostgreSQL; ``jobchat.events.sequencer``: db knows nothing of events, so it is handed
    the step rather than importing it). The rows ``before`` returns, if any, are what the
    listeners of ``on_events_committed`` are handed."""
    mark_events_written(session)
    session.info[_SEQUENCE] = (numbering, afterwards)


def mark_jobs_written(session: Session) -> None:
    """Note that this transaction queues jobs, so that its commit wakes this process's worker."""
    session.info[_JOBS_WRITTEN] = True


def make_engine(url: str, *, busy_timeout_seconds: float = 10.0, **kwargs: Any) -> Engine:
    return _make_engine(url, busy_timeout_seconds=busy_timeout_seconds, **kwargs)[0]


def _make_engine(
    url: str, *, busy_timeout_seconds: float, **kwargs: Any
) -> tuple[Engine, _PingIfStale | None]:
    """The engine, and on PostgreSQL what tests its pooled connections (``_PingIfStale``), for
    the write connections kept outside the pool too (``jobchat.db.held_session``)."""
    kwargs.setdefault("json_serializer", json_text.dumps)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine, _ms(busy_timeout_seconds))
        return engine, None
    kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _in_utc)
    event.listen(engine, "connect", _own_preparing)
    pinging = _PingIfStale(engine.dialect)
    event.listen(engine, "checkin", pinging.checked_in)
    event.listen(engine, "invalidate", pinging.invalidated)
    event.listen(engine, "checkout", pinging.checkout)
    event.listen(engine, "before_cursor_execute", _count_writes)
    return engine, pinging


class _PingIfStale:
    """Test a pooled connection before handing it out only when it may be dead: it sat unused
    for a while, or another connection was found dead since it was last used (the database
    went away). A dead one is replaced (and the pool tests the others as they are taken), so
    the server recovers by itself when the database returns, without a restart.

    SQLAlchemy's pool_pre_ping tests every connection at every checkout: a round trip and
    about 0.15 ms of this process's and the database's CPU on every request and every write
    (bench/bench_send.py). A connection used a moment ago is trusted instead: if the database
    went away since, the statement that meets it fails as an outage (503 with Retry-After), the
    connection is invalidated, and from then on every other is tested before its next use.

    When it was last used is kept in the pool entry's ``info``, which SQLAlchemy empties
    whenever the entry gets a new connection: a new one is never tested."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._lost_at = 0.0  # when a connection of this pool was last invalidated

    def checked_in(self, _dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def invalidated(self, _dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        self._lost_at = time.monotonic()

    def checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        self._test_if_stale(dbapi_connection, record.info)

    # A kept write connection (jobchat.db.held_session.Freshness): given back to the holder and
    # taken from it as it would be checked in and out of the pool.
    def given_back(self, connection: Connection) -> None:
        connection.info[_IDLE_SINCE] = time.monotonic()

    def usable(self, connection: Connection) -> bool:
        try:
            self._test_if_stale(connection.connection.dbapi_connection, connection.info)
        except DisconnectionError:
            connection.invalidate()  # as the pool invalidates one its checkout found dead
            return False
        return True

    def _test_if_stale(self, dbapi_connection: Any, info: dict[Any, Any]) -> None:
        """Raise DisconnectionError if the connection may be dead and is."""
        since = info.get(_IDLE_SINCE)
        if since is None:
            return  # new: not checked in since it connected
        if since > self._lost_at and time.monotonic() - since < IDLE_PING_SECONDS:
            return  # used a moment ago, and nothing was found dead since
        dialect = self._dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError() from exc  # replaced by a new connection
            raise


def _in_utc(dbapi_connection: Any, _record: Any) -> None:
    """Each new PostgreSQL connection's time zone is UTC: psycopg then gives timestamptz values
    with datetime.UTC as their tzinfo, which UTCDateTime keeps as they are (in the server's own
    zone, each value was converted). Set here rather than in the connection's options, which
    would replace any the database URL gives."""
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


def _own_preparing(dbapi_connection: Any, _record: Any) -> None:
    """The connection's prepared statements are ``Prepared``'s alone (``jobchat.db.pg_prepared``):
    psycopg would deallocate them all whenever it forgets its own."""
    disown_preparing(dbapi_connection)


def _count_writes(
    conn: Connection, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    """Count the statements on this connection that may change rows (any but a SELECT): a
    grouped write tells from the count whether a piece that raised had written anything
    (``jobchat.db.group_commit``). SQLite counts changed rows itself (``total_changes``)."""
    if statement.lstrip()[:6].upper() != "SELECT":
        info = conn.info
        info[_WRITE_STATEMENTS] = info.get(_WRITE_STATEMENTS, 0) + 1


def _write_statements(session: Session) -> int:
    return int(session.connection().info.get(_WRITE_STATEMENTS, 0))


def _sqlite_changes(session: Session) -> int:
    sqlite: Any = session.connection().connection.dbapi_connection
    return int(sqlite.total_changes)


def _ms(seconds: float) -> int:
    # Never 0: to SQLite and PostgreSQL alike a zero timeout means "wait forever" or "fail at
    # once", neither of which is "the little time left".
    return max(1, round(seconds * 1000))


def _configure_sqlite(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN instead of the sqlite3 module, which
        # would only ever issue a deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and rewritten rows are zeroed on disk, not left in free space: what an erasure
        # or retention deletes is gone from the file too (jobchat.privacy.scrub).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()
        record.info[_BUSY_MS] = busy_ms

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if not options.get(IMMEDIATE, False):
            _busy_timeout(conn, busy_ms)
            run_plain(conn, "BEGIN")
            return
        deadline = options.get(_DEADLINE)
        _begin_immediate(conn, time.monotonic() + busy_ms / 1000 if deadline is None else deadline)


def _busy_timeout(conn: Connection, ms: int) -> None:
    """SQLite's busy timeout for the connection's next statements; a statement only when it
    changes (a connection goes back and forth between reads and writes)."""
    info = conn.connection.info
    if info.get(_BUSY_MS) != ms:
        run_plain(conn, f"PRAGMA busy_timeout={ms}")
        info[_BUSY_MS] = ms


# How long a writer waits between two asks for SQLite's write lock, at most.
_WRITE_LOCK_POLL_SECONDS = 0.002


def _begin_immediate(conn: Connection, deadline: float) -> None:
    """Take SQLite's write lock by the deadline, asking for it every few milliseconds.

    Left to SQLite's busy handler, a writer waiting for another process (a ``jobchat worker``
    beside the server, another server) slept longer and longer between asks, up to 100 ms, and
    a process that wrote again within those sleeps kept it waiting for a second or more: the
    server's sends behind a worker sending notifications (bench/bench_notify_sends.py). So the
    handler is off for the writer's transaction (a transaction that holds the write lock waits
    for nobody in WAL mode) and the lock is asked for here. Within one process writers queue on
    the turn first (``Database.write``), so only one of them ever asks.
    """
    _busy_timeout(conn, 0)  # fail at once when the lock is taken: asked again below
    pause = 0.0002
    while True:
        try:
            run_plain(conn, "BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            left = deadline - time.monotonic()
            if not is_busy(exc) or left <= 0:
                raise
        time.sleep(min(pause, left))
        pause = min(pause * 2, _WRITE_LOCK_POLL_SECONDS)


class Database:
    def __init__(
        self,
        url: str,
        *,
        write_timeout_seconds: float = 10.0,
        max_write_waiters: int = MAX_WRITE_WAITERS,
        **engine_kwargs: Any,
    ) -> None:
        self.url = url
        self.engine, pinging = _make_engine(
            url, busy_timeout_seconds=write_timeout_seconds, **engine_kwargs
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Writers keep their sessions and connections from one transaction to the next
        # (jobchat.db.held_session): SQLite's, who take turns, one; PostgreSQL's, who may write
        # side by side, a few.
        self._held = HeldSessions(
            self.engine,
            self._sessions,
            keep=_kept_writers(self.engine, 1 if pinging is None else KEPT_WRITERS),
            freshness=pinging,
        )
        # reading()'s connections: PostgreSQL's outside a transaction, as read()'s sessions'.
        self._plain_reads = (
            self.engine if self.is_sqlite else self.engine.execution_options(**_AUTOCOMMIT)
        )
        # This process's writers queue here before they take a connection (see write()).
        self.write_turn = WriteTurn(timeout=write_timeout_seconds, max_waiting=max_write_waiters)
        # Concurrent writers (PostgreSQL sends) skip the turn but are bounded too (see
        # jobchat.db.turn.WriteSlots), within the same number of waiting threads.
        self.write_slots = WriteSlots(
            CONCURRENT_WRITERS,
            timeout=write_timeout_seconds,
            max_waiting=max(0, max_write_waiters - CONCURRENT_WRITERS),
        )
        # Sends that come while one is writing share the next transaction (on PostgreSQL, those
        # whose conversations it can lock at once: see _claim_conversations).
        if self.is_sqlite:
            self._grouped = GroupCommit(
                lambda _conversation: self.write(), self.write_turn, changes=_sqlite_changes
            )
        else:
            self._grouped = GroupCommit(
                lambda conversation: self.write(concurrent_in=conversation),
                self.write_turn,
                changes=_write_statements,
                claim=_claim_conversations,
            )
        # Called, from the writing thread, after each commit that added events (with the events,
        # in order, when they are known: see mark_events_written), or jobs.
        self.on_events_committed: list[Callable[[list[Any] | None], None]] = []
        self.on_jobs_committed: list[Callable[[], None]] = []
        event.listen(self._sessions, "before_flush", _no_writes_in_reads)
        event.listen(self._sessions, "after_rollback", undo.rolled_back)
        event.listen(self._sessions, "after_commit", undo.committed)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only: it never writes (a flush raises).

        On PostgreSQL its statements run outside a transaction (autocommit). At READ COMMITTED
        each statement of a transaction sees its own snapshot anyway, so nothing a read sees
        changes, and the BEGIN and the COMMIT were two round trips of every read request (a
        read that needs one snapshot for all its statements asks for ``snapshot()``)."""
        with self._sessions() as session:
            session.info[_READ_ONLY] = True
            if not self.is_sqlite:
                session.connection(execution_options=_AUTOCOMMIT)
            yield session
            # A read that went well ends with COMMIT rather than the ROLLBACK of closing: on
            # SQLite either ends the read transaction; outside a transaction (PostgreSQL)
            # neither sends anything. (While psycopg prepared statements of its own, a ROLLBACK
            # made it deallocate every statement prepared on the connection, and PostgreSQL
            # planned every read afresh: 6 ms for the inbox page's joins. It prepares none now:
            # jobchat.db.pg_prepared.)
            if session.in_transaction() and not (session.new or session.dirty or session.deleted):
                session.commit()

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        """A read as ``read()`` gives it, on a bare connection (``jobchat.db.reading``): for
        reads whose statements run on the driver's cursor, with an ORM session on the same
        connection opened only if asked for.

        On SQLite its statements share one read transaction (begun here: ``Prepared`` runs on
        the driver's cursor, which would not begin one), ended by COMMIT as ``read()`` ends
        its; on PostgreSQL they run outside a transaction, as ``read()``'s do."""
        with self._plain_reads.connect() as connection:
            if self.is_sqlite:
                connection.begin()
            reading = Reading(connection, open_session=self._session_reading)
            try:
                yield reading
            finally:
                reading.close()
            if connection.in_transaction():
                connection.commit()

    def _session_reading(self, connection: Connection) -> Session:
        session = self._sessions(bind=connection)
        session.info[_READ_ONLY] = True
        return session

    @contextmanager
    def write(self, *, concurrent_in: int | None = None) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Writers take turns. PostgreSQL hands out sequence numbers at insert time, not at commit,
        so two concurrent writers could commit message 8 before message 7, and a reader paging
        "after 7" would never see 7. A transaction-scoped advisory lock taken first thing keeps
        them in commit order (and, being the only lock taken first, cannot deadlock). SQLite's
        BEGIN IMMEDIATE does the same there. Events are numbered after the commit on PostgreSQL
        (``jobchat.events.sequencer``, sent with the COMMIT itself, so that its events are in
        ``events`` when this returns), in commit order whatever the writers did.

        ``concurrent_in``: the transaction writes into that one conversation only what a send
        writes (a message and what hangs on it, that conversation's rows, its members' unread
        totals), so on PostgreSQL it runs alongside other such writers: it takes the lock above
        shared, and that conversation's own lock exclusively, both in the first statement,
        before anything is read. Sends into one conversation therefore still take turns (its
        message ids commit in order, and each reads the conversation and its members as the
        previous send left them: status, unread counts), sends into different ones do not, and
        every other writer still has the database to itself (the check-then-insert paths were
        written for that). On SQLite it makes no difference.

        Within one process, turn-taking writers first queue on a lock of their own: the next one
        starts the moment the turn is free, and waits without holding a pooled connection. Left
        to the database, SQLite's busy handler polls in sleeps of up to 100 ms (the lock sat free
        while its waiters slept, and latency went from milliseconds to seconds under load), and
        every waiter held a connection that reads then lacked. Other processes still take turns
        through the database.

        The whole wait is bounded (``write_timeout_seconds``): for the turn here, then for the
        database's lock (SQLite's busy timeout, PostgreSQL's lock_timeout, both set to what is
        left). Past it the write raises ``WriteBusy`` or the database's own lock error, both
        answered 503 ``busy``, before anything was written.
        """
        side_by_side = concurrent_in if not self.is_sqlite else None
        gate = self.write_slots if side_by_side is not None else self.write_turn
        deadline = gate.acquire()
        began = time.monotonic()
        try:
            with self._transaction(deadline, side_by_side) as session:
                yield session
        finally:
            gate.release()
            _note_if_slow(began)

    def write_grouped(self, work: Callable[[Session], T], *, concurrent_in: int) -> T:
        """``work(session)`` in a write transaction, as ``write(concurrent_in=...)`` would run
        it, answered with what it returns or raises. The transaction may be shared with other
        threads' work that came while another was writing (group commit:
        ``jobchat.db.group_commit``, whose terms ``work`` must keep)."""
        return self._grouped.run(work, concurrent_in)

    def _write_session(self) -> AbstractContextManager[Session]:
        """A session for a write transaction (on SQLite taken while holding the write turn)."""
        return self._held.session()

    @contextmanager
    def _transaction(self, deadline: float, conversation_id: int | None) -> Iterator[Session]:
        with self._write_session() as session:
            with session.begin():
                connection = session.connection(
                    execution_options={IMMEDIATE: True, _DEADLINE: deadline}
                )
                if connection.dialect.name == "postgresql":
                    # One statement: the timeout (for this transaction only) is set before the
                    # locks are asked for, as the select list is evaluated in order.
                    timeout = f"{_ms(deadline - time.monotonic())}ms"
                    if conversation_id is None:
                        _EXCLUSIVE.run(connection, {"timeout": timeout, "key": WRITE_LOCK_KEY})
                    else:
                        _SHARED_IN_CONVERSATION.run(
                            connection,
                            {
                                "timeout": timeout,
                                "key": WRITE_LOCK_KEY,
                                "class": CONVERSATION_LOCK_CLASS,
                                "conversation": _lock_key(conversation_id),
                            },
                        )
                yield session
                numbering = session.info.get(_SEQUENCE)
                if numbering is not None:
                    self._commit_and_number(session, connection, *numbering[0])
            self._after_commit(session)

    def _commit_and_number(
        self, session: Session, connection: Connection, before: str, after: str
    ) -> None:
        """Commit and number the events queued, in one round trip on the writer's connection.

        The query string ``<before>; COMMIT; <after>``: PostgreSQL runs ``before`` in the
        transaction, commits it, then runs ``after`` as an implicit transaction of its own, and
        runs nothing past a statement that failed (an error before the COMMIT leaves the
        transaction aborted, to be rolled back as any). A second pooled connection for the
        numbering cost a checkout, its ping, an isolation switch and a round trip.
        ``session.begin()``'s own commit then finds the connection idle: psycopg sends nothing
        for it. The session is flushed first, as its commit would have.

        No COMMIT of ours fails but for an outage (no deferred constraints, read committed), so
        an error that is no outage came from ``before`` (nothing was committed) or from
        ``after`` (committed, the numbering failed: raised, as it was when a second connection
        did it). An outage is raised too: whether the commit got through is unknown, as for any
        COMMIT, and what was left queued is numbered by the next writer or the stream's hub.
        """
        session.flush()
        numbered = run_script(connection, f"{before}; COMMIT; {after}")
        session.info[_NUMBERED] = True
        # What ``before`` numbered and returned, committed now: the transaction's events (and
        # any other writer's it numbered with them) as the table holds them, for the listeners
        # of on_events_committed. None when another numbered them (``after``): then unknown.
        session.info[_EVENTS_WRITTEN] = sorted(numbered, key=attrgetter("id")) if numbered else None

    @contextmanager
    def work(self) -> Iterator[Session]:
        """A write transaction for bookkeeping that adds no events (the jobs worker's).

        It skips the event-order lock of ``write()``, so workers on PostgreSQL do not queue
        behind senders and can take jobs side by side with ``FOR UPDATE SKIP LOCKED``. SQLite
        has one writer at a time whatever we do, so there it queues with this process's other
        writers (see ``write()``) rather than in the busy handler.
        """
        if not self.is_sqlite:
            with self._write_session() as session:
                with session.begin():
                    yield session
                    _no_events(session)
                self._after_commit(session)
            return
        deadline = self.write_turn.acquire()
        began = time.monotonic()
        try:
            with self._write_session() as session:
                with session.begin():
                    session.connection(execution_options={IMMEDIATE: True, _DEADLINE: deadline})
                    yield session
                    _no_events(session)
                self._after_commit(session)
        finally:
            self.write_turn.release()
            _note_if_slow(began)

    def on_session(self, name: str, listener: Callable[..., None]) -> None:
        """Listen to an ORM session event ("after_flush", "after_commit"...) of this database's
        sessions only, not of every database in the process."""
        event.listen(self._sessions, name, listener)

    def _after_commit(self, session: Session) -> None:
        numbering = session.info.pop(_SEQUENCE, None)
        if numbering is not None and session.info.pop(_NUMBERED, False):
            try:
                numbering[1](self.engine)
            except Exception as exc:
                # Committed and numbered already: housekeeping that can wait for the next.
                if not is_outage(exc):
                    raise
                log.warning("after numbering events: %s", describe(exc))
        if _EVENTS_WRITTEN in session.info:
            events = session.info.pop(_EVENTS_WRITTEN)
            if session.info.pop(_EVENTS_REWRITTEN, False):
                events = None
            for tell in self.on_events_committed:
                tell(events)
        if session.info.pop(_JOBS_WRITTEN, False):
            for listener in self.on_jobs_committed:
                listener()

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read transaction whose statements all see the same committed state (it cannot
        write, as ``read()`` cannot).

        SQLite's read transactions are snapshots already; PostgreSQL's default (read committed)
        gives each statement its own, so this asks for repeatable read.
        """
        with self._sessions() as session:
            session.info[_READ_ONLY] = True
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session
            # Ended with COMMIT, as read() is, not the ROLLBACK of closing (see read()).
            if session.in_transaction() and not (session.new or session.dirty or session.deleted):
                session.commit()

    def dispose(self) -> None:
        self._held.close()
        self.engine.dispose()


# Every write runs one of these first: on the driver's cursor (jobchat.db.prepared; the row
# they return says nothing and is not fetched).
_EXCLUSIVE = Prepared(
    text("SELECT set_config('lock_timeout', :timeout, true), pg_advisory_xact_lock(:key)")
)
_SHARED_IN_CONVERSATION = Prepared(
    text(
        "SELECT set_config('lock_timeout', :timeout, true), pg_advisory_xact_lock_shared(:key), "
        "pg_advisory_xact_lock(CAST(:class AS integer), CAST(:conversation AS integer))"
    )
)


def _claim_conversations(session: Session, conversations: Collection[int]) -> list[int]:
    """Take these conversations' locks for the session's transaction where no other holds
    them, without waiting (one statement); those it could not take. A grouped write begun for
    one conversation (``Database.write(concurrent_in=...)``) takes the others' this way."""
    keys = sorted(conversations)
    # Integers of ours, written into the statement (as many as the batch has conversations).
    tries = ", ".join(
        f"pg_try_advisory_xact_lock({CONVERSATION_LOCK_CLASS}, {_lock_key(key)})" for key in keys
    )
    taken = session.connection().exec_driver_sql(f"SELECT {tries}").one()
    return [key for key, got in zip(keys, taken, strict=True) if not got]


def _kept_writers(engine: Engine, wanted: int) -> int:
    """How many write sessions to keep: ``wanted``, but fewer than the pool's size, so that
    kept connections never leave reads (and a write opened inside another) waiting on a pool
    they emptied (a database made with ``pool_size=1`` keeps none; 0 is a pool without a
    limit)."""
    size = getattr(engine.pool, "size", None)
    limit = int(size()) if callable(size) else 0
    return min(wanted, limit - 1) if limit > 0 else wanted


def _lock_key(conversation_id: int) -> int:
    # The two-key form takes int4s: ids past 2**31 share locks (harmless: those sends only
    # take turns).
    return int(conversation_id) % 2_147_483_647


def _note_if_slow(began: float) -> None:
    """Log a write that held this process's write turn (SQLite: the database's one write lock)
    for SLOW_WRITE_SECONDS or longer, naming the code that opened it: every other writer, the
    sends included, waited that long, and past MAX_WRITE_WAITERS of them were answered 503."""
    held = time.monotonic() - began
    if held < SLOW_WRITE_SECONDS:
        return
    # The frames above this one and contextlib's: the block that wrote, and who called it.
    frames = [
        f"{frame.name} ({Path(frame.filename).name}:{frame.lineno})"
        for frame in traceback.extract_stack(limit=_SLOW_WRITE_FRAMES + 3)[:-2]
        if not frame.filename.endswith("contextlib.py")
    ]
    log.warning(
        "a write transaction held the write turn for %.0f ms: %s",
        held * 1000,
        " < ".join(reversed(frames[-_SLOW_WRITE_FRAMES:])),
    )


def _no_writes_in_reads(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_READ_ONLY) and (session.new or session.dirty or session.deleted):
        # Outside a transaction (PostgreSQL's reads) each statement would commit on its own.
        raise RuntimeError("a read session must not write: use Database.write()")


def _no_events(session: Session) -> None:
    if _EVENTS_WRITTEN in session.info:
        raise RuntimeError("events must be written with Database.write()")

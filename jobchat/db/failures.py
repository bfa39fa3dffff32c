"""Which database failures are not faults of ours: the database is busy, or it is away.

Both are answered 503 with Retry-After (never 500), and the background loops (the jobs worker,
the event stream's poller) wait and carry on instead of reporting a crash.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from jobchat.db.turn import WriteBusy

# PostgreSQL's lock_not_available (a lock_timeout ran out), and deadlock_detected and
# serialization_failure: the transaction was rolled back for another's sake, nothing written.
# Writers take their locks in an order that avoids the last two; should one happen anyway, it
# is busy (503, retry), not a fault.
_BUSY_STATES = {"55P03", "40P01", "40001"}
# deadlock_detected, serialization_failure.
_CONFLICT_STATES = {"40P01", "40001"}
# admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down).
_SERVER_GOING = {"57P01", "57P02", "57P03"}


def is_busy(exc: BaseException) -> bool:
    """A write that could not get its turn in time, or a request that found every pooled
    connection taken for as long as the pool waits: overload, not a fault."""
    if isinstance(exc, WriteBusy | PoolTimeout):
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        # "database is locked" (SQLITE_BUSY or SQLITE_LOCKED, extended codes included) once
        # the busy timeout has run out.
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        return "locked" in str(orig)
    return getattr(orig, "sqlstate", None) in _BUSY_STATES


def is_conflict(exc: BaseException) -> bool:
    """PostgreSQL ended the transaction to resolve a deadlock or a serialization failure: it
    would go through if run again."""
    if not isinstance(exc, DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in _CONFLICT_STATES


def is_unreachable(exc: BaseException) -> bool:
    """The database cannot be reached: refused, cut off, restarting, or shutting down."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True  # SQLAlchemy recognised a lost connection (and dropped it from the pool)
    orig = exc.orig
    if isinstance(orig, psycopg.OperationalError):
        # No SQLSTATE: the failure is the client's (refused, timed out, closed by the peer).
        state = orig.sqlstate
        return state is None or state.startswith("08") or state in _SERVER_GOING
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        return code is not None and code & 0xFF == sqlite3.SQLITE_CANTOPEN
    return False


def describe(exc: BaseException) -> str:
    """One short line for a log or a health check: no traceback, no connection string."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = " ".join(str(orig).split())
    return f"{type(orig).__name__}: {text[:200]}" if text else type(orig).__name__


def is_outage(exc: BaseException) -> bool:
    """Busy or unreachable: the database cannot take this now, and will again; nothing to
    report as a fault, only to wait out."""
    return is_busy(exc) or is_unreachable(exc)


def retry_wait(base: float, failures: int, longest: float) -> float:
    """How long a background loop waits after its ``failures``-th failure in a row: ``base``
    doubling with each, up to ``longest`` (or ``base``, if that is longer)."""
    return min(base * 2.0 ** (failures - 1), max(base, longest))

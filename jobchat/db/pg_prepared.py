"""PostgreSQL: ``Prepared``'s statements prepared by name on each connection and run on libpq
(``psycopg.pq``), past psycopg's cursor.

psycopg's cursor is written in Python around its C parts: converting the query and its
parameters, deciding whether to prepare, the wait loop, building a result and its loaders. It
was a fifth of a send's CPU at one sender on PostgreSQL (bench/bench_send.py --py-spy: 0.46 ms
of 2.2 for seven statements), where libpq's own calls take a fraction of that. Here each
statement is prepared once a connection under a name of its own, its parameters are written
out as text by psycopg's ``Transformer`` (the C adapters the cursor uses) and it runs with
``PQexecPrepared``, which lets go of the GIL while it waits; the rows come back through the same
``Transformer``, as the cursor's would.

Prepared statements live as long as their connection, unless something deallocates them:
psycopg sends ``DEALLOCATE ALL`` whenever it forgets its own (on every ROLLBACK, or a DROP or
an ALTER, once it has prepared any). So psycopg's own preparing is turned off on every
connection (``prepare_threshold = None``: ``disown_preparing``) and the connection's prepared
statements are jobchat's alone; the statements that do not run here are planned each time, as
psycopg's first five runs of any statement always were.

The transaction is begun as psycopg's cursor would begin it: a connection not in autocommit that
is idle sends BEGIN first, with the isolation level, access mode and deferrability the
connection was given (SQLAlchemy gives them through psycopg's connection attributes).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import abc, errors, pq
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy.pool import PoolProxiedConnection

# In the pool entry's info (emptied by SQLAlchemy when the entry gets a new connection): what
# this connection has prepared.
_PREPARED_HERE = "jobchat_pg_prepared"
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_IDLE = pq.TransactionStatus.IDLE
_names = itertools.count(1)


def disown_preparing(dbapi_connection: Any) -> None:
    """psycopg prepares nothing on this connection itself (see the module's docstring)."""
    dbapi_connection.prepare_threshold = None


def usable(dbapi_connection: Any) -> bool:
    """Whether statements may run here on ``dbapi_connection`` (psycopg's, not its async one)."""
    return isinstance(dbapi_connection, psycopg.Connection)


def _begin(connection: psycopg.Connection[Any]) -> bytes:
    """The BEGIN that starts a transaction with the connection's settings (those psycopg's
    cursor would write into its own)."""
    settings = (connection.isolation_level, connection.read_only, connection.deferrable)
    command = _BEGINS.get(settings)
    if command is None:
        level, read_only, deferrable = settings
        words = ["BEGIN"]
        if level is not None:
            words.append("ISOLATION LEVEL " + level.name.replace("_", " "))
        if read_only is not None:
            words.append("READ ONLY" if read_only else "READ WRITE")
        if deferrable is not None:
            words.append("DEFERRABLE" if deferrable else "NOT DEFERRABLE")
        command = _BEGINS[settings] = " ".join(words).encode()
    return command


_BEGINS: dict[tuple[Any, bool | None, bool | None], bytes] = {}


@dataclass(slots=True)
class _Here:
    """One connection's: its adapters, and the names of the statements it has prepared."""

    transformer: abc.Transformer
    names: set[bytes]


class PgStatement:
    """A statement with numbered parameters (``$1``…), prepared on first use on a connection."""

    __slots__ = ("formats", "name", "sql", "text")

    def __init__(self, sql: str, parameters: int) -> None:
        self.text = sql
        self.sql = sql.encode()
        self.name = f"jobchat_{next(_names)}".encode()
        # Every parameter goes as text, its type left to the statement (SQLAlchemy writes a
        # cast beside each where the type matters), so one preparation serves any value.
        self.formats = [PyFormat.TEXT] * parameters

    def run(
        self, fairy: PoolProxiedConnection, args: Sequence[Any], *, rows: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run with ``args`` (in parameter order) on ``fairy``'s psycopg connection, which
        ``usable`` accepted; its rows (none unless ``rows``). Raises psycopg's errors, as its
        cursor would."""
        connection: psycopg.Connection[Any] = fairy.driver_connection  # type: ignore[assignment]
        pgconn = connection.pgconn
        here: _Here | None = fairy.info.get(_PREPARED_HERE)
        if here is None:
            here = fairy.info[_PREPARED_HERE] = _Here(Transformer(connection), set())
        if not connection.autocommit and pgconn.transaction_status == _IDLE:
            _checked(connection, pgconn.exec_(_begin(connection)))
        if self.name not in here.names:
            _checked(connection, pgconn.prepare(self.name, self.sql))
            here.names.add(self.name)
        transformer = here.transformer
        # None is NULL to libpq, as psycopg's cursor passes it (pq's annotation leaves it out).
        params: Any = transformer.dump_sequence(args, self.formats) if args else None
        result = _checked(connection, pgconn.exec_prepared(self.name, params))
        if not rows or result.status != pq.ExecStatus.TUPLES_OK:
            return []
        transformer.set_pgresult(result)
        loaded: list[tuple[Any, ...]] = transformer.load_rows(0, result.ntuples, tuple)
        return loaded


def _checked(connection: psycopg.Connection[Any], result: pq.abc.PGresult) -> pq.abc.PGresult:
    """``result``, or the error psycopg's cursor would have raised for it."""
    if result.status in _OK:
        return result
    encoding = connection.info.encoding
    if not result.error_field(pq.DiagnosticField.SQLSTATE):
        # No SQLSTATE: the client's own failure (the connection was lost), as psycopg says it.
        raise psycopg.OperationalError(result.get_error_message(encoding))
    raise errors.error_from_result(result, encoding=encoding)

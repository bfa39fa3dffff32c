"""Statements of the send's hot path, compiled once and run straight on the driver's cursor.

Running a Core statement through ``Connection.execute`` costs SQLAlchemy's machinery around
the driver call: the statement's cache key and compiled-cache lookup, the parameters built and
converted, an execution context, a result object. With the statement cached that is still
30-35 us a statement against the driver's 8-9 us (measured on SQLite here), and a send runs
about eight of them: a quarter of a send's CPU was SQLAlchemy executing statements, under 2% the
driver (bench/bench_send.py --py-spy). ``Prepared`` keeps what does not change from one run to
the next (the SQL text for each dialect, the order of its parameters, each parameter's
conversion) and does only the rest: convert, execute, fetch. On SQLite the driver's cursor
runs it; on PostgreSQL libpq itself, the statement prepared by name once a connection
(``jobchat.db.pg_prepared``: psycopg's cursor was a fifth of a send's CPU there).

What it keeps of SQLAlchemy's behaviour: the columns' bind conversions (UTCDateTime, JSON); the
driver's errors wrapped as SQLAlchemy's (``DBAPIError.instance``, so the app's handlers answer
503 for a database that is down or busy) and a connection that was lost invalidated, as
SQLAlchemy would; and ``before_cursor_execute`` listeners are told of each statement (the
benchmarks and tests count statements with them; the cursor they are given is None). The rows
come back as plain tuples, each value as its column's type gives it (the conversion run only
where the type has one for the dialect: times, JSON; never for a None): what SQLAlchemy's rows
would hold, without building them (a page of 50 conversations and their 400 members is most of
its reading in rows). What it does not do: expanding IN parameters (``jobchat.db.id_lists``
binds a list as one parameter) and Python-side column defaults (every value is given), both
refused when compiled; the rows of a text() statement are not fetched (for ones whose answer
says nothing, like a lock's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from jobchat.db.pg_prepared import PgStatement, usable

_Convert = Callable[[Any], Any] | None
_Bind = tuple[str, _Convert, Any, bool]


def connection_of(session: Session) -> Connection:
    """The session's connection, for statements that select plain columns (executed on it,
    their rows skip the ORM's result machinery). What the session holds unflushed is flushed
    first, as ``session.execute`` would (a conversation just started is rendered in the same
    transaction); with nothing to flush that costs nothing."""
    session.flush()
    return session.connection()


@dataclass(frozen=True, slots=True)
class Ran:
    """What a statement returned: its rows (as the driver gives them) and, for an INSERT on
    SQLite, the new row's id."""

    rows: list[Any]
    lastrowid: int | None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: bool
    # Whether it returns rows (a SELECT, or RETURNING): known here, as asking the cursor for
    # its description builds psycopg's column objects on every run.
    returns_rows: bool
    # (parameter name, its conversion, the value it always has): given values are looked up
    # by name, constants (SQLAlchemy binds literals such as ``+ 1`` as parameters) are kept.
    binds: tuple[_Bind, ...]
    # (position, conversion) of each returned column whose type converts the driver's value.
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    # PostgreSQL: the statement with numbered parameters, to run on libpq
    # (``jobchat.db.pg_prepared``), and its binds in their order.
    on_libpq: PgStatement | None = None
    libpq_binds: tuple[_Bind, ...] = ()


class Prepared:
    """``Prepared(statement).run(connection, params)``: the statement run with ``params``
    (every parameter it names, by name), as ``connection.execute`` would run it."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def run(self, connection: Connection, params: Mapping[str, Any]) -> Ran:
        dialect = connection.dialect
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self.statement, dialect)
        fairy = connection.connection
        libpq = plan.on_libpq
        if libpq is not None and not usable(fairy.dbapi_connection):
            libpq = None
        args: list[Any] | dict[str, Any]
        if libpq is not None:  # PostgreSQL on libpq: $1, $2…
            numbered = [_value(bind, params) for bind in plan.libpq_binds]
            sql, args = libpq.text, numbered
        elif plan.positional:  # SQLite: ?, in the order the SQL names them (a name may recur)
            sql, args = plan.sql, [_value(bind, params) for bind in plan.binds]
        else:  # psycopg's cursor: %(name)s
            sql, args = plan.sql, {bind[0]: _value(bind, params) for bind in plan.binds}
        _tell(connection, sql, args)
        cursor = None
        try:
            if libpq is not None:
                rows: list[Any] = libpq.run(fairy, numbered, rows=plan.returns_rows)
                lastrowid = None
            else:
                cursor = fairy.cursor()
                try:
                    cursor.execute(sql, args)
                    rows = list(cursor.fetchall()) if plan.returns_rows else []
                    lastrowid = getattr(cursor, "lastrowid", None)
                finally:
                    cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(connection, cursor, sql, args, exc) from exc
        if plan.results and rows:
            rows = _converted(rows, plan.results)
        return Ran(rows, lastrowid)


def run_script(connection: Connection, sql: str) -> list[Any]:
    """A query string of several statements and no parameters (PostgreSQL's simple query
    protocol) run on the driver's cursor, as ``connection.exec_driver_sql`` would run it: the
    rows of its first statement, as named tuples (``row.id``…) of the driver's values."""
    cursor = connection.connection.cursor(row_factory=namedtuple_row)
    return _run_text(connection, cursor, sql, rows=True)


def run_plain(connection: Connection, sql: str) -> None:
    """One statement with no parameters and no rows wanted (SQLite's BEGIN IMMEDIATE, a PRAGMA)
    run on the driver's cursor, as ``connection.exec_driver_sql`` would run it: every write
    transaction on SQLite begins with one or two."""
    _run_text(connection, connection.connection.cursor(), sql, rows=False)


def _run_text(connection: Connection, cursor: Any, sql: str, *, rows: bool) -> list[Any]:
    """``sql`` (no parameters) on ``cursor``, closed after; its rows if ``rows``."""
    try:
        _tell(connection, sql, ())
        cursor.execute(sql)
        return list(cursor.fetchall()) if rows and cursor.description is not None else []
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(connection, cursor, sql, (), exc) from exc
    finally:
        cursor.close()


def _tell(connection: Connection, sql: str, args: Any) -> None:
    """``before_cursor_execute`` listeners hear of the statement (with no cursor)."""
    if connection.dispatch.before_cursor_execute:
        connection.dispatch.before_cursor_execute(connection, None, sql, args, None, False)


def _wrapped(connection: Connection, cursor: Any, sql: str, args: Any, exc: Any) -> StatementError:
    """The driver's ``exc`` as SQLAlchemy's error, the connection invalidated if it was lost
    (as ``Connection.execute`` does)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(exc, connection.connection, cursor)
    wrapped: StatementError = DBAPIError.instance(
        sql, args, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )
    if lost:
        connection.invalidate(exc)
    return wrapped


def _converted(rows: list[Any], results: tuple[tuple[int, Callable[[Any], Any]], ...]) -> list[Any]:
    out = []
    for row in rows:
        values = list(row)
        for at, convert in results:
            value = values[at]
            if value is not None:
                values[at] = convert(value)
        out.append(tuple(values))
    return out


def _value(bind: _Bind, params: Mapping[str, Any]) -> Any:
    name, convert, constant, fixed = bind
    if fixed:
        return constant
    return convert(params[name]) if convert is not None else params[name]


def _compile(statement: ClauseElement, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    # A SELECT's columns, or those an INSERT/UPDATE/DELETE returns (a text() statement has
    # none: whatever it returns is not fetched).
    returned = list(getattr(statement, "exported_columns", ()))
    results = []
    for at, column in enumerate(returned):
        convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if convert is not None:
            results.append((at, convert))
    plan = _Plan(
        compiled.string,
        compiled.positional,
        bool(returned),
        _binds(compiled, dialect),
        tuple(results),
    )
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return plan
    # The same statement with numbered parameters, each name once ($1 may recur), in the
    # order its binds list them; compiled by a dialect of the same kind that writes those.
    numbered = statement.compile(dialect=_numbering(type(dialect)))
    assert isinstance(numbered, SQLCompiler) and numbered.positiontup is not None
    binds = _binds(numbered, dialect)
    return replace(plan, on_libpq=PgStatement(numbered.string, len(binds)), libpq_binds=binds)


def _binds(compiled: SQLCompiler, dialect: Dialect) -> tuple[_Bind, ...]:
    """Each parameter of ``compiled``, in the order the driver takes them (named ones: any)."""
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    binds: list[_Bind] = []
    for name in names or ():
        bind = compiled.binds[name]
        if bind.expanding:
            raise ValueError(f"{name} expands: not for Prepared")
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        fixed = not bind.required
        constant = (convert(bind.value) if convert else bind.value) if fixed else None
        binds.append((name, convert, constant, fixed))
    return tuple(binds)


def _numbering(kind: type[Dialect]) -> Dialect:
    dialect = _NUMBERING.get(kind)
    if dialect is None:
        dialect = _NUMBERING[kind] = kind(paramstyle="numeric_dollar")  # type: ignore[call-arg]
    return dialect


_NUMBERING: dict[type[Dialect], Dialect] = {}

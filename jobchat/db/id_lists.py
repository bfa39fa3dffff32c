"""``column IN (a list of ids)`` as one statement text, whatever the list's length.

SQLAlchemy's expanding ``IN`` writes one placeholder per id into the SQL at every execution: the
statement is finished anew each time (its compiled form cannot be reused as it is), and each
list length is a different statement to the driver and the database. On PostgreSQL that is also
a statement psycopg will not cache its parsing of (past 50 parameters) and does not prepare
(its text keeps changing). ``in_ids`` binds the whole list as one parameter instead:
``= ANY(:ids::BIGINT[])`` on PostgreSQL, ``IN (SELECT value FROM json_each(:ids))`` with
the ids as a JSON array on SQLite. Both planners drive the lookup from the list, through the
column's index, as they do for a written-out ``IN``.

For the hot reads and the send, which ask about a page of conversations or a conversation's
members on every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import BigInteger, Boolean, Dialect, SQLColumnExpression, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


class IdList(TypeDecorator[list[int]]):
    """A list of ids as one parameter: an array on PostgreSQL, a JSON array elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Iterable[int] | None, dialect: Dialect) -> Any:
        if value is None:
            raise ValueError("a list of ids is needed, not None")
        ids = [int(v) for v in value]  # ints only: nothing else may reach json_each's text
        return ids if dialect.name == "postgresql" else orjson.dumps(ids).decode()


class InIds(ColumnElement[bool]):
    """``column`` is one of the ids bound as ``name`` (see the module's docstring)."""

    inherit_cache = True
    type = Boolean()
    # A comparison already: not to be written "... = 1" where the database has no booleans.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], ids: BindParameter[list[int]]) -> None:
        self.column = column
        self.ids = ids


def in_ids(column: SQLColumnExpression[Any], name: str) -> InIds:
    # A mapped attribute (Member.conversation_id) becomes its column, as in any clause.
    element = coercions.expect(roles.ExpressionElementRole, column)
    return InIds(element, bindparam(name, type_=IdList()))


@compiles(InIds)
def _in_json_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    # Both parts are the compiler's own: a column's name and the parameter's placeholder.
    column = compiler.process(element.column, **kw)
    ids = compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608


@compiles(InIds, "postgresql")
def _any_of_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy's psycopg dialect writes the parameter with its type (``::BIGINT[]``), so
    # psycopg does not pick the smallest integer array the values fit (a different prepared
    # statement for small and large ids).
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.ids, **kw)})"

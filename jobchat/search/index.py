"""Writing the search index, in the same transaction as the change it follows.

One row per message that is not deleted for everyone, keyed by the message id, holding the two
aligned token streams of ``jobchat.search.text.index_terms``:

- SQLite: the FTS5 table ``message_search(words, stems)``, rowid = message id, ``ascii``
  tokenizer (it only splits our space-joined tokens; they are folded already).
- PostgreSQL: ``message_search(message_id, words, stems, document)``, ``document`` a tsvector
  we build (``jobchat.search.text.tsvector_literal``) under a GIN index; its foreign key cascades,
  so erasing a message erases its entry.

Both keep ``words`` and ``stems`` as text: ranking reads them, the same on both databases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Connection,
    Insert,
    Text,
    bindparam,
    cast,
    column,
    insert,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Session

from jobchat.db.prepared import Prepared
from jobchat.search.text import index_terms, tsvector_literal

# Sends index their message unless this is switched off: only the benchmark does (to measure
# what the index costs a send); a message sent while it is off is never found.
_enabled = True


def set_indexing(on: bool) -> None:
    """Switch indexing on sends on or off (benchmarks only; see ``_enabled``)."""
    global _enabled
    _enabled = on


def indexing() -> bool:
    return _enabled


_INSERT = {
    "sqlite": text("INSERT INTO message_search (rowid, words, stems) VALUES (:id, :words, :stems)"),
    "postgresql": text(
        "INSERT INTO message_search (message_id, words, stems, document) "
        "VALUES (:id, :words, :stems, CAST(:document AS tsvector))"
    ),
}
# A send's one row, run on the driver's cursor (jobchat.db.prepared).
_INSERT_ONE = {dialect: Prepared(statement) for dialect, statement in _INSERT.items()}
_DELETE = {
    "sqlite": text("DELETE FROM message_search WHERE rowid IN :ids").bindparams(
        bindparam("ids", expanding=True)
    ),
    "postgresql": text("DELETE FROM message_search WHERE message_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    ),
}


# PostgreSQL's table as a statement names it (it is made by its migration, not a model).
_SEARCH = table(
    "message_search",
    column("message_id", BigInteger()),
    column("words", Text()),
    column("stems", Text()),
    column("document"),
)


def _row(
    dialect: str, message_id: int, subject: str | None, body: str, filenames: Sequence[str] = ()
) -> dict[str, Any]:
    return {"id": message_id, **_entry(dialect, subject, body, filenames)}


def _entry(
    dialect: str, subject: str | None, body: str, filenames: Sequence[str]
) -> dict[str, Any]:
    words, stems = index_terms(subject, body, filenames)
    entry: dict[str, Any] = {"words": words, "stems": stems}
    if dialect == "postgresql":
        entry["document"] = tsvector_literal(words, stems)
    return entry


def new_entry(
    dialect: str, subject: str | None, body: str, filenames: Sequence[str] = ()
) -> dict[str, Any] | None:
    """A new message's index entry for ``dialect`` (the parameters of ``add_entry`` or of
    ``entries_of``, all but the message's id), its files' names with it; None when sends are
    not indexed."""
    return _entry(dialect, subject, body, filenames) if _enabled else None


def add_entry(connection: Connection, message_id: int, entry: Mapping[str, Any]) -> None:
    """Index one new message (a send: called in its transaction) with its ``new_entry``."""
    _INSERT_ONE[connection.dialect.name].run(connection, {"id": message_id, **entry})


def entries_of(inserted: CTE) -> Insert:
    """PostgreSQL: an INSERT of the index entry of each message id that ``inserted`` (a CTE
    with a column ``id``: an INSERT into messages RETURNING it) gives, with the parameters of
    ``new_entry`` (a send inserts its message and its entry in one statement), returning the
    ids indexed."""
    entry = select(
        inserted.c.id,
        bindparam("words", type_=Text()),
        bindparam("stems", type_=Text()),
        cast(bindparam("document", type_=Text()), TSVECTOR),
    )
    return (
        insert(_SEARCH)
        .from_select(["message_id", "words", "stems", "document"], entry)
        .returning(_SEARCH.c.message_id)
    )


def unindex_messages(session: Session, ids: Sequence[int]) -> None:
    """Remove messages from the index (deleted for everyone, or erased)."""
    if not ids:
        return
    connection = session.connection()
    for start in range(0, len(ids), 500):
        connection.execute(
            _DELETE[connection.dialect.name], {"ids": list(ids[start : start + 500])}
        )


def index_many(
    connection: Connection,
    rows: Iterable[tuple[int, str | None, str]],
    filenames: Mapping[int, Sequence[str]] | None = None,
) -> None:
    """Index many messages at once, (id, subject, body) each, with their files' names by message
    id, in one executemany: the migration's backfill, ``jobchat search reindex`` and the
    benchmark's loading."""
    dialect = connection.dialect.name
    names = filenames or {}
    batch = [
        _row(dialect, message_id, subject, body, names.get(message_id, ()))
        for message_id, subject, body in rows
    ]
    if batch:
        connection.execute(_INSERT[dialect], batch)

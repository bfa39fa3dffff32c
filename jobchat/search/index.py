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

from sqlalchemy import Connection, bindparam, text
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


def _row(
    dialect: str, message_id: int, subject: str | None, body: str, filenames: Sequence[str] = ()
) -> dict[str, Any]:
    words, stems = index_terms(subject, body, filenames)
    row: dict[str, Any] = {"id": message_id, "words": words, "stems": stems}
    if dialect == "postgresql":
        row["document"] = tsvector_literal(words, stems)
    return row


def index_message(
    session: Session,
    *,
    message_id: int,
    subject: str | None,
    body: str,
    filenames: Sequence[str] = (),
) -> None:
    """Index one new message (a send: called in its transaction), its files' names with it."""
    if not _enabled:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    _INSERT_ONE[dialect].run(connection, _row(dialect, message_id, subject, body, filenames))


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

"""Making erased words unreadable in the database's files, not only in its rows.

PostgreSQL: deleted rows are gone from every query at once; their dead tuples stay in the
table's pages until (auto)vacuum reuses them, as for any delete.

SQLite keeps deleted bytes in three places, each handled here:

- free space in pages and free pages: ``PRAGMA secure_delete=ON`` (set on every connection by
  ``jobchat.db.engine``) zeroes them as rows are deleted or rewritten;
- the search index (FTS5): deleting an entry only appends a "delete" marker, and the words stay
  in older index segments until they are merged. SQLite 3.42's ``secure-delete`` option would
  avoid that, but the Python we run may link an older library, so an erasure merges the index
  (``optimize``) in its own transaction;
- the write-ahead log: frames written before the erasure hold the old pages until a checkpoint
  copies the new ones back and the log is reset. ``checkpoint`` runs one, truncating the file,
  after the erasure commits.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobchat.db.engine import Database

log = logging.getLogger("jobchat.privacy")

_OPTIMIZE = text("INSERT INTO message_search (message_search) VALUES ('optimize')")


def forget_search_terms(session: Session) -> None:
    """SQLite: merge the search index so erased entries' words leave it (in the caller's
    transaction). PostgreSQL's index rows went with their messages."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.execute(_OPTIMIZE)


def checkpoint(db: Database) -> bool:
    """SQLite: copy the write-ahead log into the database and truncate it, so the log's older
    frames (with the erased pages as they were) are gone. Returns False when readers kept it
    from completing (the next checkpoint, automatic or an erasure's, finishes it)."""
    if not db.is_sqlite:
        return True
    with db.engine.connect() as connection:
        busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        log.warning("the write-ahead log could not be truncated after an erasure: readers")
    return not busy

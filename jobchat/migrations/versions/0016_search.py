"""search: the full-text index of messages (SQLite FTS5, PostgreSQL tsvector + GIN)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jobchat.search.index import index_many

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Messages tokenised and written per statement during the backfill.
_BATCH = 2000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # The tokens are ours (jobchat.search.text), space-joined: the ascii tokenizer only
        # splits them again, whatever the Unicode tables of this SQLite build.
        op.execute(
            "CREATE VIRTUAL TABLE message_search USING fts5(words, stems, tokenize = 'ascii')"
        )
    else:
        op.execute(
            "CREATE TABLE message_search ("
            " message_id BIGINT PRIMARY KEY"
            " CONSTRAINT fk_message_search_message_id_messages"
            " REFERENCES messages (id) ON DELETE CASCADE,"
            " words TEXT NOT NULL,"
            " stems TEXT NOT NULL,"
            " document TSVECTOR NOT NULL)"
        )
        op.execute("CREATE INDEX ix_message_search_document ON message_search USING gin (document)")
    _backfill(bind)


def _backfill(bind: sa.Connection) -> None:
    """Index every message there is (but those deleted for everyone), a batch at a time."""
    after = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, subject, body FROM messages"
                " WHERE deleted_at IS NULL AND id > :after ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": _BATCH},
        ).all()
        if not rows:
            return
        index_many(bind, [(r.id, r.subject, r.body) for r in rows])
        after = rows[-1].id


def downgrade() -> None:
    op.execute("DROP TABLE message_search")

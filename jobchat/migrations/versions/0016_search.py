"""search: the full-text index of messages (SQLite FTS5, PostgreSQL tsvector + GIN)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Filled in by the search work (issue 18).
    pass


def downgrade() -> None:
    pass

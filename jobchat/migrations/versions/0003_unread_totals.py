"""unread totals: each user's badge (conversations with something unread, unread messages) kept
on their row by the actions, instead of summed over their member rows on every read and event

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unread_conversations", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("unread_messages", sa.Integer(), server_default="0", nullable=False)
        )
    # Backfill from the member rows, which carry each conversation's unread count.
    op.execute(
        """
        UPDATE users SET
            unread_conversations = (
                SELECT count(*) FROM members m
                WHERE m.user_id = users.id AND m.unread_count > 0),
            unread_messages = (
                SELECT coalesce(sum(m.unread_count), 0) FROM members m
                WHERE m.user_id = users.id AND m.unread_count > 0)
        """
    )


def downgrade() -> None:
    # Dropped in place (SQLite 3.35+ can): rebuilding users, which other tables reference, would
    # break the foreign keys that SQLite enforces here.
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("unread_messages")
        batch_op.drop_column("unread_conversations")

"""scheduling: messages to be posted later by their author

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_messages",
        sa.Column("id", _ID, nullable=False),
        sa.Column("author_id", _ID, nullable=False),
        sa.Column("conversation_id", _ID, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("send_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("job_id", _ID, nullable=True),
        sa.Column("created_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_scheduled_messages_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_scheduled_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_scheduled_messages_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_messages")),
        sa.UniqueConstraint(
            "author_id",
            "idempotency_key",
            name=op.f("uq_scheduled_messages_author_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_scheduled_messages_author",
        "scheduled_messages",
        ["author_id", "status", "send_at"],
        unique=False,
    )
    op.create_index(
        "ix_scheduled_messages_conversation",
        "scheduled_messages",
        ["conversation_id", "author_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_scheduled_messages_conversation", table_name="scheduled_messages")
    op.drop_index("ix_scheduled_messages_author", table_name="scheduled_messages")
    op.drop_table("scheduled_messages")

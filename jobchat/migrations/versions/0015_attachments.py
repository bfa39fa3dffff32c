"""attachments: files uploaded into a conversation and taken by a message

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("conversation_id", _ID, nullable=False),
        sa.Column("uploader_id", _ID, nullable=False),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=300), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_attachments_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["uploader_id"], ["users.id"], name=op.f("fk_attachments_uploader_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_attachments_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_attachments_storage_key")),
    )
    op.create_index(
        op.f("ix_attachments_conversation_id"), "attachments", ["conversation_id"], unique=False
    )
    op.create_index(
        op.f("ix_attachments_uploader_id"), "attachments", ["uploader_id"], unique=False
    )
    op.create_index(
        "ix_attachments_unclaimed", "attachments", ["message_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_attachments_unclaimed", table_name="attachments")
    op.drop_index(op.f("ix_attachments_uploader_id"), table_name="attachments")
    op.drop_index(op.f("ix_attachments_conversation_id"), table_name="attachments")
    op.drop_table("attachments")

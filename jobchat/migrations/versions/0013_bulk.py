"""bulk: bulk sends and their recipients

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = jobchat.db.base.UTCDateTime(timezone=True)

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bulk_messages",
        sa.Column("id", _ID, nullable=False),
        sa.Column("author_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("template_id", _ID, nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("sms_next_at", _TIME, nullable=True),
        sa.Column("send_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_bulk_messages_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_bulk_messages_template_id_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_messages")),
        sa.UniqueConstraint(
            "author_id", "idempotency_key", name=op.f("uq_bulk_messages_author_id_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_bulk_messages_author_id"), "bulk_messages", ["author_id"], unique=False
    )
    op.create_table(
        "bulk_recipients",
        sa.Column("bulk_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("application_ext", sa.String(length=200), nullable=False),
        sa.Column("application_id", _ID, nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("conversation_id", _ID, nullable=True),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("done_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["bulk_id"],
            ["bulk_messages.id"],
            name=op.f("fk_bulk_recipients_bulk_id_bulk_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_bulk_recipients_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_bulk_recipients_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_bulk_recipients_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("bulk_id", "position", name=op.f("pk_bulk_recipients")),
    )
    op.create_index(
        op.f("ix_bulk_recipients_bulk_id"),
        "bulk_recipients",
        ["bulk_id", "status", "position"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_bulk_recipients_bulk_id"), table_name="bulk_recipients")
    op.drop_table("bulk_recipients")
    op.drop_index(op.f("ix_bulk_messages_author_id"), table_name="bulk_messages")
    op.drop_table("bulk_messages")

"""event queue: PostgreSQL's events wait here for their number until their writer has committed

Senders into different conversations now write side by side on PostgreSQL; an id taken from the
events sequence at insert would become visible out of order (see
``jobchat.events.sequencer``). The columns and foreign keys are those of ``events``, with ``seq``
in place of ``id``.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_queue",
        sa.Column("seq", _ID, nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", _ID, nullable=True),
        sa.Column("user_id", _ID, nullable=True),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=True),
        sa.Column("created_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_event_queue_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_event_queue_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_event_queue_user_id_users")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event_queue")),
    )
    with op.batch_alter_table("event_queue", schema=None) as batch_op:
        # Only the foreign key that retention checks once per deleted message is indexed: the
        # queue is all but empty, and each index is one more write per event.
        batch_op.create_index(batch_op.f("ix_event_queue_message_id"), ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_table("event_queue")

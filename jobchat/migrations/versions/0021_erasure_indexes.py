"""erasure: indexes on the columns that name a message, so erasing messages stays fast

Deleting a message makes PostgreSQL check every foreign key that points at it; these columns had
no index, so each check read the whole table (every text received, every scheduled or bulk
send), once per erased message. ``conversation_activity.message_id`` has no foreign key, but an
erasure deletes the lines that name an erased message.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-05 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("inbound_sms", "message_id"),
    ("scheduled_messages", "message_id"),
    ("bulk_recipients", "message_id"),
    ("conversation_activity", "message_id"),
)


def upgrade() -> None:
    for table, column in _INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    for table, column in reversed(_INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)

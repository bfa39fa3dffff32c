"""ladder: the newest message whose push quiet hours held back, per member

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members", recreate="never") as batch:
        batch.add_column(sa.Column("push_held_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", recreate="never") as batch:
        batch.drop_column("push_held_id")

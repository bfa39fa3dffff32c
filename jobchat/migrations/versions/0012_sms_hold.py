"""sms_hold: SMS quiet-hours holds

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", recreate="never") as batch:
        batch.add_column(
            sa.Column("held_until", jobchat.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(
            sa.Column("timezone_given", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Before this column nobody recorded whether a zone was given. A zone other than the
    # default UTC was given by someone (the ATS, or the person); a UTC one cannot be told from
    # the default, so the phone number decides for it (and for a UK number that is UTC in winter
    # anyway). Guessing "given" for those would text a New York number at 3 a.m.
    op.get_bind().execute(sa.text("UPDATE users SET timezone_given = true WHERE timezone <> 'UTC'"))


def downgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.drop_column("timezone_given")
    with op.batch_alter_table("deliveries", recreate="never") as batch:
        batch.drop_column("held_until")

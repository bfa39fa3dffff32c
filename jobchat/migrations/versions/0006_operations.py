"""operations: deactivated people, closed jobs, named and revocable tokens, opt-outs by number

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deactivated_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="open", nullable=False)
        )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("revoked_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "sms_opt_outs",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("created_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_sms_opt_outs")),
    )
    # Numbers whose owner opted out by text before consent belonged to the number: the latest
    # change of a candidate's consent was their own STOP.
    op.execute(
        """
        INSERT INTO sms_opt_outs (number, created_at, detail)
        SELECT u.phone, MAX(c.created_at), 'carried over from the candidate''s own opt-out'
        FROM users u
        JOIN sms_consent_changes c ON c.candidate_id = u.id
        WHERE u.phone IS NOT NULL AND u.phone_problem IS NULL AND u.sms_consent = false
          AND c.id = (SELECT MAX(id) FROM sms_consent_changes WHERE candidate_id = u.id)
          AND c.source = 'keyword' AND c.consented = false
        GROUP BY u.phone
        """
    )


def downgrade() -> None:
    # SQLite drops the columns in place (3.35+): recreating users would trip the foreign keys
    # that point at it.
    op.drop_table("sms_opt_outs")
    with op.batch_alter_table("credentials", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("name")
    with op.batch_alter_table("jobs", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("status")
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("deactivated_at")

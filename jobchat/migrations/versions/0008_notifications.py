"""notifications: push subscriptions, notification preferences, quiet hours, notification texts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jobchat.db.base
from jobchat.config import get_settings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("endpoint", sa.String(length=1000), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=100), nullable=False),
        sa.Column("created_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("credential_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_push_subscriptions_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_push_subscriptions_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
    )
    op.create_index(
        op.f("ix_push_subscriptions_user_id"), "push_subscriptions", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_push_subscriptions_credential_id"),
        "push_subscriptions",
        ["credential_id"],
        unique=False,
    )
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(
            sa.Column("push_notifications", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch.add_column(
            sa.Column("sms_notifications", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("quiet_start", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("quiet_end", sa.String(length=5), nullable=True))
        batch.add_column(
            sa.Column(
                "notify_held_until", jobchat.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_index(
        "ix_users_notify_held",
        "users",
        ["notify_held_until"],
        unique=False,
        sqlite_where=sa.text("notify_held_until IS NOT NULL"),
        postgresql_where=sa.text("notify_held_until IS NOT NULL"),
    )
    # Candidates already here get the quiet hours a new one gets (JOBCHAT_CANDIDATE_QUIET_HOURS,
    # as this server sets it; none when it is off): nobody's phone should start buzzing at night
    # because of an upgrade.
    if (window := get_settings().candidate_quiet_window) is not None:
        op.get_bind().execute(
            sa.text("UPDATE users SET quiet_start = :s, quiet_end = :e WHERE kind = 'candidate'"),
            {"s": window.start, "e": window.end},
        )
    with op.batch_alter_table("members", recreate="never") as batch:
        batch.add_column(
            sa.Column("sms_due_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("sms_notified_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_members_sms_due",
        "members",
        ["sms_due_at"],
        unique=False,
        sqlite_where=sa.text("sms_due_at IS NOT NULL"),
        postgresql_where=sa.text("sms_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_members_sms_due", table_name="members")
    with op.batch_alter_table("members", recreate="never") as batch:
        batch.drop_column("sms_notified_at")
        batch.drop_column("sms_due_at")
    op.drop_index("ix_users_notify_held", table_name="users")
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.drop_column("notify_held_until")
        batch.drop_column("quiet_end")
        batch.drop_column("quiet_start")
        batch.drop_column("sms_notifications")
        batch.drop_column("push_notifications")
    op.drop_index(op.f("ix_push_subscriptions_credential_id"), table_name="push_subscriptions")
    op.drop_index(op.f("ix_push_subscriptions_user_id"), table_name="push_subscriptions")
    op.drop_table("push_subscriptions")

"""sms consent: opt-outs keep the number's keyed hash (HMAC-SHA256), never the number; an opt-in's
first text carries an intro (who we are, how to stop), tracked on its ledger row

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 07:20:00.000000

The key is the dedicated one of jobchat.sms.optouts, kept in ``server_secrets``; made here if
there is none yet. The hash is written out here rather than imported, so that this migration
keeps doing what it did whatever that module becomes (tests check that the two agree).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import jobchat.db.base

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY_NAME = "sms_opt_out_key"

_secrets = sa.table(
    "server_secrets",
    sa.column("name", sa.String),
    sa.column("value", sa.String),
    sa.column("created_at", jobchat.db.base.UTCDateTime(timezone=True)),
)


def _opt_outs(column: str) -> sa.TableClause:
    """The table as it is before the change (``number``) or after it (``number_hash``), typed,
    so that times read back as times on SQLite too."""
    return sa.table(
        "sms_opt_outs",
        sa.column(column, sa.String),
        sa.column("created_at", jobchat.db.base.UTCDateTime(timezone=True)),
        sa.column("detail", sa.Text),
    )


def _hash(key: str, number: str) -> str:
    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()


def _key(bind: sa.Connection) -> str:
    key = bind.execute(
        sa.select(_secrets.c.value).where(_secrets.c.name == _KEY_NAME)
    ).scalar_one_or_none()
    if key is None:
        key = secrets.token_urlsafe(48)
        bind.execute(
            sa.insert(_secrets).values(name=_KEY_NAME, value=key, created_at=datetime.now(UTC))
        )
    return key


def _table(column: sa.Column[str]) -> list[sa.Column[Any] | sa.PrimaryKeyConstraint]:
    return [
        column,
        sa.Column("created_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(column.name, name=op.f("pk_sms_opt_outs")),
    ]


def upgrade() -> None:
    _add_intro()
    bind = op.get_bind()
    key = _key(bind)
    rows = bind.execute(sa.select(_opt_outs("number"))).all()
    op.drop_table("sms_opt_outs")
    table = op.create_table(
        "sms_opt_outs", *_table(sa.Column("number_hash", sa.String(length=64), nullable=False))
    )
    if rows:
        op.bulk_insert(
            table,
            [
                {
                    "number_hash": _hash(key, r.number),
                    "created_at": r.created_at,
                    "detail": r.detail,
                }
                for r in rows
            ],
        )


def _add_intro() -> None:
    with op.batch_alter_table("sms_consent_changes", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("intro_claim", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column(
                "intro_claimed_until", jobchat.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("intro_sent_at", jobchat.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    # A consent that some text (a message, or a notification text) has followed already was
    # introduced as well as it will be: only consents not yet followed by one get the intro.
    op.execute(
        """
        UPDATE sms_consent_changes SET intro_sent_at = created_at
        WHERE consented AND (
            EXISTS (
                SELECT 1 FROM deliveries d
                WHERE d.recipient_id = sms_consent_changes.candidate_id AND d.channel = 'sms'
                  AND d.status IN ('sending', 'sent', 'delivered', 'undelivered')
                  AND d.created_at >= sms_consent_changes.created_at
            )
            OR EXISTS (
                SELECT 1 FROM members m
                WHERE m.user_id = sms_consent_changes.candidate_id
                  AND m.sms_notified_at >= sms_consent_changes.created_at
            )
        )
        """
    )


def downgrade() -> None:
    """Only the numbers some candidate still has can be written out again: an opt-out whose
    number is on nobody's record any more (an erased candidate's) is lost."""
    with op.batch_alter_table("sms_consent_changes", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("intro_sent_at")
        batch_op.drop_column("intro_claimed_until")
        batch_op.drop_column("intro_claim")
    bind = op.get_bind()
    key = _key(bind)
    rows = {r.number_hash: r for r in bind.execute(sa.select(_opt_outs("number_hash")))}
    phones = bind.execute(sa.text("SELECT DISTINCT phone FROM users WHERE phone IS NOT NULL"))
    found = {phone: rows[h] for (phone,) in phones if (h := _hash(key, phone)) in rows}
    op.drop_table("sms_opt_outs")
    table = op.create_table(
        "sms_opt_outs", *_table(sa.Column("number", sa.String(length=32), nullable=False))
    )
    if found:
        op.bulk_insert(
            table,
            [
                {"number": phone, "created_at": r.created_at, "detail": r.detail}
                for phone, r in found.items()
            ],
        )

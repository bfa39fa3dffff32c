"""Reading the audit log, newest first, a page at a time."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

from jobchat.db.base import UTCDateTime
from jobchat.errors import Invalid
from jobchat.inputs import MAX_ID
from jobchat.privacy.models import AuditAction, AuditEntry


def _encode_cursor(entry: AuditEntry) -> str:
    """An opaque cursor: the sort key (time, id) of the last entry of a page."""
    raw = json.dumps([entry.at.isoformat(), entry.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(time, id) from a cursor; anything this server would not have made is a 422."""
    try:
        at_raw, entry_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(at_raw, str) and type(entry_id) is int and 1 <= entry_id <= MAX_ID):
            raise ValueError(cursor)
        at = datetime.fromisoformat(at_raw)
        if at.tzinfo is None:
            raise ValueError(cursor)
        return at.astimezone(UTC), entry_id
    except (binascii.Error, UnicodeError, ValueError, TypeError, OverflowError):
        raise Invalid({"cursor": "is not a cursor this server gave out"}) from None


def audit_page(
    session: Session,
    *,
    action: AuditAction | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEntry], str | None]:
    """Entries, newest first (by time, then id): a range scan of ``ix_audit_log_at``, or of
    ``ix_audit_log_action`` for one action. Returns the page and the cursor of the next."""
    stmt = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action.value)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if cursor is not None:
        at, entry_id = _decode_cursor(cursor)
        # A row-value comparison, so both databases use it as a bound of the index scan.
        stmt = stmt.where(
            tuple_(AuditEntry.at, AuditEntry.id)
            < tuple_(literal(at, UTCDateTime()), literal(entry_id))
        )
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _encode_cursor(rows[-1]) if more and rows else None

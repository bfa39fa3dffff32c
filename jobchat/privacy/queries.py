"""Reading for the privacy API: the audit log, newest first, a page at a time; and what a
candidate's export lists, each in batches keyed by id so that no list is loaded whole."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from sqlalchemy import Select, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session, defer, joinedload, selectinload

from jobchat.conversations.models import Conversation
from jobchat.db.base import UTCDateTime
from jobchat.errors import Invalid
from jobchat.inputs import MAX_ID
from jobchat.mail.models import InboundEmail, SentEmail
from jobchat.messages.models import Delivery, Message
from jobchat.privacy.models import AuditAction, AuditEntry
from jobchat.sms.models import InboundSms, SmsConsentChange


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


# --- a candidate's export -----------------------------------------------------------------------


def _wrote_in(candidate_id: int) -> Select[int]:
    """The conversations the candidate wrote in (the index of the unique (author_id,
    idempotency_key) serves it)."""
    return select(Message.conversation_id).where(Message.author_id == candidate_id)


def export_counts(session: Session, candidate_id: int) -> tuple[int, int]:
    """(conversations, messages) an export of the candidate lists: for its audit entry. It is
    counted in the export's write transaction, so each count is served by an index (the
    conversations' candidate_id, the messages' history and author) rather than by a scan of
    the messages' table, which an OR of the two conditions would cost."""
    about = select(Conversation.id).where(Conversation.candidate_id == candidate_id)
    elsewhere = (
        select(Message.conversation_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.author_id == candidate_id,
            or_(Conversation.candidate_id.is_(None), Conversation.candidate_id != candidate_id),
        )
    )
    about_conversations = session.scalar(select(func.count()).select_from(about.subquery()))
    about_messages = session.scalar(
        select(func.count()).select_from(Message).where(Message.conversation_id.in_(about))
    )
    own_elsewhere = session.scalar(select(func.count()).select_from(elsewhere.subquery()))
    other_conversations = session.scalar(
        select(func.count()).select_from(elsewhere.distinct().subquery())
    )
    return (
        (about_conversations or 0) + (other_conversations or 0),
        (about_messages or 0) + (own_elsewhere or 0),
    )


def export_conversations(session: Session, candidate_id: int) -> list[tuple[Conversation, bool]]:
    """(conversation, whether its context is the candidate): those about them, then the others
    they wrote in, each in order of creation. A candidate is in few: loaded at once."""
    loads = (
        joinedload(Conversation.job),
        joinedload(Conversation.application),
        joinedload(Conversation.partner),
    )
    order = (Conversation.created_at, Conversation.id)
    about = session.scalars(
        select(Conversation)
        .where(Conversation.candidate_id == candidate_id)
        .order_by(*order)
        .options(*loads)
    )
    others = session.scalars(
        select(Conversation)
        .where(
            Conversation.id.in_(_wrote_in(candidate_id)),
            or_(Conversation.candidate_id.is_(None), Conversation.candidate_id != candidate_id),
        )
        .order_by(*order)
        .options(*loads)
    )
    return [(conv, True) for conv in about] + [(conv, False) for conv in others]


def export_messages(
    session: Session, conversation_id: int, *, author_id: int | None, after: int, limit: int
) -> list[Message]:
    """Up to ``limit`` messages of the conversation after id ``after`` (only ``author_id``'s,
    unless None), with their deliveries, attachments and author."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.id > after)
        .order_by(Message.id)
        .limit(limit)
        .options(
            joinedload(Message.author),
            selectinload(Message.deliveries).joinedload(Delivery.recipient),
            selectinload(Message.attachments),
        )
    )
    if author_id is not None:
        stmt = stmt.where(Message.author_id == author_id)
    return list(session.scalars(stmt))


def consent_changes(
    session: Session, candidate_id: int, *, after: int, limit: int
) -> list[SmsConsentChange]:
    return list(
        session.scalars(
            select(SmsConsentChange)
            .where(SmsConsentChange.candidate_id == candidate_id, SmsConsentChange.id > after)
            .order_by(SmsConsentChange.id)
            .limit(limit)
            .options(joinedload(SmsConsentChange.actor))
        )
    )


def sent_emails(
    session: Session, candidate_id: int, *, after: int, limit: int
) -> list[tuple[SentEmail, int | None]]:
    """Emails sent to the candidate, each with the message it carried (if any)."""
    rows = session.execute(
        select(SentEmail, Delivery.message_id)
        .outerjoin(Delivery, Delivery.id == SentEmail.delivery_id)
        .where(SentEmail.user_id == candidate_id, SentEmail.id > after)
        .order_by(SentEmail.id)
        .limit(limit)
    )
    return [(email, message_id) for email, message_id in rows]


def received_emails(
    session: Session, candidate_id: int, *, after: int, limit: int
) -> list[InboundEmail]:
    # Not the raw mail (the message it became is exported with its conversation): the columns
    # the export shows, so that a batch never holds raw mails in memory.
    return list(
        session.scalars(
            select(InboundEmail)
            .where(InboundEmail.user_id == candidate_id, InboundEmail.id > after)
            .order_by(InboundEmail.id)
            .limit(limit)
            .options(defer(InboundEmail.raw))
        )
    )


def received_texts(
    session: Session, candidate_id: int, *, after: int, limit: int
) -> list[InboundSms]:
    return list(
        session.scalars(
            select(InboundSms)
            .where(InboundSms.candidate_id == candidate_id, InboundSms.id > after)
            .order_by(InboundSms.id)
            .limit(limit)
            .options(defer(InboundSms.params))
        )
    )

"""Retention: messages older than JOBCHAT_RETENTION_DAYS are erased, daily, by the worker.

"Erased" as a candidate's erasure erases them (``jobchat.privacy.purge``): with their files,
search entries, events, deliveries, email and SMS records and webhook events. Email and SMS
records that never became a message (a rejected email, a STOP) go at the same age.

The conversations stay, whatever is left in them: one whose messages all expired keeps its
members and context, shows no last message, and counts nothing unread; others point their
``last_message_id`` at the newest message left and lose what was unread of the expired ones.
Nothing is announced to open pages: what expires is older than any page keeps open.

The work goes in batches of ``BATCH`` messages, each its own transaction, so one run never
holds the write turn long; each batch writes a ``messages.expired`` audit entry with its counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jobchat.db.engine import Database
from jobchat.events.queries import latest_event_id
from jobchat.events.sequencer import sequence_within
from jobchat.mail.models import InboundEmail, SentEmail
from jobchat.messages.models import Message
from jobchat.privacy.audit import SYSTEM, record
from jobchat.privacy.models import AuditAction
from jobchat.privacy.purge import (
    conversations_of,
    count_delete,
    erase_messages,
    keep_event_numbering,
    settle_conversations,
)
from jobchat.privacy.scrub import checkpoint, forget_search_terms
from jobchat.sms.models import InboundSms, SmsStatusReport

# Messages erased per transaction (see the module's docstring; the notes give its time).
BATCH = 500
# How often the worker runs it: daily is what the contract says.
EVERY_SECONDS = 24 * 3600.0


def do_expire_messages(
    session: Session, *, before: datetime, now: datetime, batch: int = BATCH
) -> Counter[str]:
    """Erase up to ``batch`` of the oldest messages written before ``before`` (and up to
    ``batch`` of each kind of older email and SMS record); the counts of what went, audited."""
    counts: Counter[str] = Counter()
    # Events still waiting for their number are erased like the others (PostgreSQL).
    sequence_within(session)
    newest_event = latest_event_id(session)
    ids = list(
        session.scalars(
            # In id order, which is time order (writers take turns): the walk along the key
            # finds the oldest at once; no index on created_at for every send to keep up.
            select(Message.id).where(Message.created_at < before).order_by(Message.id).limit(batch)
        )
    )
    touched = conversations_of(session, ids)
    erase_messages(session, ids, now=now, counts=counts)
    settle_conversations(session, touched, ids)
    keep_event_numbering(session, newest_event, now)
    for model, at in (
        (InboundEmail, InboundEmail.received_at),
        (InboundSms, InboundSms.received_at),
        (SentEmail, SentEmail.sent_at),
        (SmsStatusReport, SmsStatusReport.received_at),
    ):
        old = select(model.id).where(at < before).order_by(model.id).limit(batch)
        gone = count_delete(session, delete(model).where(model.id.in_(old)))
        counts["texts" if model in (InboundSms, SmsStatusReport) else "emails"] += gone
    if any(counts.values()):
        record(
            session,
            AuditAction.messages_expired,
            now=now,
            actor=SYSTEM,
            details={"before": before.isoformat(), **dict(sorted(counts.items()))},
        )
    return counts


def expire(db: Database, *, days: int, now: datetime, batch: int = BATCH) -> Counter[str]:
    """One retention run: batches until nothing older is left, then (SQLite) the search index
    merged and the write-ahead log truncated, so the erased words leave the files too."""
    before = now - timedelta(days=days)
    total: Counter[str] = Counter()
    while True:
        with db.work() as session:
            counts = do_expire_messages(session, before=before, now=now, batch=batch)
        total += counts
        if not any(counts.values()):
            break
    if total and db.is_sqlite:
        with db.work() as session:
            forget_search_terms(session)
        checkpoint(db)
    return total


def retention_runner(db: Database, days: int) -> Callable[[datetime], int]:
    """The worker's periodic task (``jobchat.background``): how many messages it erased."""

    def run(now: datetime) -> int:
        return expire(db, days=days, now=now)["messages"]

    return run

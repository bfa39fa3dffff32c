"""Read-only questions the email code asks.

A notification is the worker's most frequent job, and inside ``jobchat serve`` its Python runs
beside the requests under one interpreter lock: each millisecond of it is time a send may wait
(bench/bench_notify_sends.py --in-server). So what a notification reads comes in a few
``Prepared`` statements as plain rows, not through the ORM's objects and lazy loads (fifteen
statements before, and one more for each message listed; preparing a notification took 6.6 ms
of the interpreter, now 1.1, most of it the email package composing the email).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, bindparam, exists, func, select, union_all
from sqlalchemy.orm import Session, aliased

from jobchat.conversations.models import Conversation, Member
from jobchat.db.id_lists import in_ids
from jobchat.db.prepared import Prepared, connection_of
from jobchat.directory.models import Application, Organization, User
from jobchat.files.models import Attachment
from jobchat.mail.models import InboundEmail, InboundOutcome, SentEmail
from jobchat.messages.models import Delivery, HiddenMessage, Message

# References name the first email of a thread and the latest few: enough for every mail client
# to thread, without a header that grows with every message.
MAX_REFERENCES = 10


_THREAD = Prepared(
    union_all(
        select(SentEmail.sent_at.label("at"), SentEmail.message_id_header.label("mid")).where(
            SentEmail.conversation_id == bindparam("conv_id"),
            SentEmail.user_id == bindparam("user_id"),
        ),
        select(InboundEmail.received_at, InboundEmail.message_id_header).where(
            InboundEmail.conversation_id == bindparam("conv_id"),
            InboundEmail.user_id == bindparam("user_id"),
            InboundEmail.message_id_header.is_not(None),
        ),
    )
)


def thread_message_ids(session: Session, conversation_id: int, user_id: int) -> list[str]:
    """The Message-IDs of the emails between us and this member about this conversation, both
    ways, oldest first: the root and the latest few."""
    params = {"conv_id": conversation_id, "user_id": user_id}
    found = _THREAD.run(connection_of(session), params).rows
    ordered = [mid for _, mid in sorted(found) if mid]
    if len(ordered) <= MAX_REFERENCES:
        return ordered
    return [ordered[0], *ordered[-(MAX_REFERENCES - 1) :]]


class NotifyRecipient(NamedTuple):
    """A member about to be told of unread messages, and the conversation's keys."""

    name: str
    email: str
    email_notifications: bool
    timezone: str
    kind: str
    # Messages up to this id are read, or were told of already.
    after: int
    conv_kind: str
    job_id: int | None
    application_id: int | None


_RECIPIENT = Prepared(
    select(
        User.name,
        User.email,
        User.email_notifications,
        User.timezone,
        User.kind,
        Member.last_read_message_id,
        Member.notified_through_id,
        Conversation.kind,
        Conversation.job_id,
        Conversation.application_id,
    )
    .join(User, User.id == Member.user_id)
    .join(Conversation, Conversation.id == Member.conversation_id)
    .where(Member.conversation_id == bindparam("conv_id"), Member.user_id == bindparam("user_id"))
)


def notify_recipient(session: Session, conv_id: int, user_id: int) -> NotifyRecipient | None:
    """The member, or None once they have left the conversation."""
    rows = _RECIPIENT.run(connection_of(session), {"conv_id": conv_id, "user_id": user_id}).rows
    if not rows:
        return None
    name, email, wants, tz, kind, last_read, notified, conv_kind, job_id, app_id = rows[0]
    return NotifyRecipient(
        name, email, bool(wants), tz, kind, max(last_read, notified), conv_kind, job_id, app_id
    )


class Unread(NamedTuple):
    id: int
    body: str
    created_at: datetime
    author: str | None  # None: written by jobchat itself
    organization: str | None
    filenames: tuple[str, ...]  # its files still there, in their order


_author = aliased(User, name="author")
_author_org = aliased(Organization, name="author_org")

# The conditions of "unread and not told of", with the total counted over all the rows that
# meet them before the limit (a window), so that one statement gives the page and the count.
_UNREAD = Prepared(
    select(
        Message.id,
        Message.body,
        Message.created_at,
        _author.name,
        _author_org.name,
        func.count().over().label("total"),
    )
    .outerjoin(_author, _author.id == Message.author_id)
    .outerjoin(_author_org, _author_org.id == _author.organization_id)
    .where(
        Message.conversation_id == bindparam("conv_id"),
        Message.id > bindparam("after"),
        Message.deleted_at.is_(None),
        (Message.author_id.is_(None)) | (Message.author_id != bindparam("user_id")),
        ~exists().where(
            and_(
                HiddenMessage.message_id == Message.id,
                HiddenMessage.user_id == bindparam("user_id"),
            )
        ),
        ~exists().where(
            and_(Delivery.message_id == Message.id, Delivery.recipient_id == bindparam("user_id"))
        ),
    )
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)

_FILENAMES = Prepared(
    select(Attachment.message_id, Attachment.filename)
    .where(in_ids(Attachment.message_id, "ids"), Attachment.removed_at.is_(None))
    .order_by(Attachment.message_id, Attachment.position, Attachment.id)
)


def unread_to_notify(
    session: Session, conv_id: int, user_id: int, *, after: int, limit: int
) -> tuple[list[Unread], int]:
    """The newest ``limit`` messages this member has neither read nor been told of (those after
    ``after``), oldest first, and how many there are in all. Their own messages, ones deleted
    (for everyone, or by them for themselves) and ones that reached them as an email or SMS
    already do not count."""
    conn = connection_of(session)
    params = {"conv_id": conv_id, "user_id": user_id, "after": after, "limit": limit}
    rows = _UNREAD.run(conn, params).rows
    if not rows:
        return [], 0
    total = int(rows[0][5])
    files: defaultdict[int, list[str]] = defaultdict(list)
    for message_id, filename in _FILENAMES.run(conn, {"ids": [r[0] for r in rows]}).rows:
        files[message_id].append(filename)
    unread = [
        Unread(mid, body, at, author, org, tuple(files.get(mid, ())))
        for mid, body, at, author, org, _ in reversed(rows)
    ]
    return unread, total


_APPLIED_BY_ID = Prepared(
    select(Application.applied_at).where(Application.id == bindparam("app_id"))
)
_APPLIED_BY_JOB = Prepared(
    select(Application.applied_at).where(
        Application.job_id == bindparam("job_id"),
        Application.candidate_id == bindparam("candidate_id"),
    )
)


def applied_at(
    session: Session, candidate_id: int, *, application_id: int | None, job_id: int | None
) -> datetime | None:
    """When the candidate applied: to the conversation's application, or else to its job."""
    if application_id is not None:
        rows = _APPLIED_BY_ID.run(connection_of(session), {"app_id": application_id}).rows
    elif job_id is not None:
        params = {"job_id": job_id, "candidate_id": candidate_id}
        rows = _APPLIED_BY_JOB.run(connection_of(session), params).rows
    else:
        return None
    return rows[0][0] if rows else None


def sent_emails_by_message_id(session: Session, message_ids: Sequence[str]) -> list[SentEmail]:
    if not message_ids:
        return []
    return list(
        session.scalars(
            select(SentEmail)
            .where(SentEmail.message_id_header.in_(list(message_ids)))
            .order_by(SentEmail.id.desc())
        )
    )


def inbound_by_message_id(session: Session, message_ids: Sequence[str]) -> InboundEmail | None:
    """The newest posted inbound email among ``message_ids`` (a reply to a reply)."""
    if not message_ids:
        return None
    return session.scalars(
        select(InboundEmail)
        .where(
            InboundEmail.message_id_header.in_(list(message_ids)),
            InboundEmail.outcome == InboundOutcome.posted,
        )
        .order_by(InboundEmail.id.desc())
        .limit(1)
    ).one_or_none()


def inbound_by_dedupe_key(session: Session, key: str) -> InboundEmail | None:
    return session.scalars(select(InboundEmail).where(InboundEmail.dedupe_key == key)).one_or_none()


def closed_notice_sent(session: Session, conversation_id: int, user_id: int, since: object) -> bool:
    """Whether this member was already told, since the conversation ended, that it is closed."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    InboundEmail.conversation_id == conversation_id,
                    InboundEmail.user_id == user_id,
                    InboundEmail.outcome == InboundOutcome.closed,
                    InboundEmail.received_at >= since,
                )
            )
        )
    )


def any_notification_due(session: Session, now: datetime) -> bool:
    return (
        session.scalar(select(Member.user_id).where(Member.notify_due_at <= now).limit(1))
        is not None
    )

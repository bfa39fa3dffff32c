"""Read-only questions the email code asks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from jobchat.conversations.models import Member
from jobchat.directory.models import Application
from jobchat.mail.models import InboundEmail, InboundOutcome, SentEmail
from jobchat.messages.models import Delivery, HiddenMessage, Message

# References name the first email of a thread and the latest few: enough for every mail client
# to thread, without a header that grows with every message.
MAX_REFERENCES = 10


def thread_message_ids(session: Session, conversation_id: int, user_id: int) -> list[str]:
    """The Message-IDs of the emails between us and this member about this conversation, both
    ways, oldest first: the root and the latest few."""
    sent = session.execute(
        select(SentEmail.sent_at, SentEmail.message_id_header).where(
            SentEmail.conversation_id == conversation_id, SentEmail.user_id == user_id
        )
    ).all()
    received = session.execute(
        select(InboundEmail.received_at, InboundEmail.message_id_header).where(
            InboundEmail.conversation_id == conversation_id,
            InboundEmail.user_id == user_id,
            InboundEmail.message_id_header.is_not(None),
        )
    ).all()
    ordered = [mid for _, mid in sorted([*sent, *received]) if mid]
    if len(ordered) <= MAX_REFERENCES:
        return ordered
    return [ordered[0], *ordered[-(MAX_REFERENCES - 1) :]]


def unread_to_notify(session: Session, member: Member, *, limit: int) -> tuple[list[Message], int]:
    """The newest ``limit`` messages this member has neither read nor been told of, and how
    many there are in all. Their own messages, ones deleted (for everyone, or by them for
    themselves) and ones that reached them as an email or SMS already do not count."""
    after = max(member.last_read_message_id, member.notified_through_id)
    user_id = member.user_id
    conditions = (
        Message.conversation_id == member.conversation_id,
        Message.id > after,
        Message.deleted_at.is_(None),
        (Message.author_id.is_(None)) | (Message.author_id != user_id),
        ~exists().where(HiddenMessage.message_id == Message.id, HiddenMessage.user_id == user_id),
        ~exists().where(Delivery.message_id == Message.id, Delivery.recipient_id == user_id),
    )
    total = session.scalar(select(func.count()).select_from(Message).where(*conditions)) or 0
    newest = list(
        session.scalars(
            select(Message)
            .where(*conditions)
            .options(selectinload(Message.author))
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
    newest.reverse()
    return newest, total


def application_of(
    session: Session, candidate_id: int, *, application_id: int | None, job_id: int | None
) -> Application | None:
    if application_id is not None:
        return session.get(Application, application_id)
    if job_id is None:
        return None
    return session.scalars(
        select(Application).where(
            Application.job_id == job_id, Application.candidate_id == candidate_id
        )
    ).one_or_none()


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

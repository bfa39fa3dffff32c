"""Erasing a candidate: everything they are and wrote goes, in one transaction.

What goes (rows deleted, not blanked):

- every conversation whose context is the candidate (application, case, candidate_partner,
  agency and agency_private threads: ``conversations.candidate_id``) loses all its messages,
  files, events, activity lines and members; the row itself stays, as its id and kind only
  (no job, person or application; its key ``erased:<id>``), because the ``member.removed``
  events that tell other members' open pages to drop it must point at it. Nobody is a member
  of it any more, so nobody sees it; a later application of the same ids gets new rows and a
  new thread;
- every message they wrote anywhere else (``jobchat.privacy.purge``: with its copies);
- their applications, email and SMS records (sent, received, status reports, the consent
  ledger), deliveries to them, scheduled sends in their threads, queued jobs that name them,
  push subscriptions, credentials (tokens, sessions, sign-in links), hidden-message rows and
  their user row itself: a later upsert of the same external id makes a new person.

What stays: the ``candidate.erased`` audit entry (ids and counts only), audit entries that
named them (ids only, see ``jobchat.privacy.models``; those of what they did themselves lose the
address they did it from, which is theirs too), the SMS opt-out of their number (owned by
``jobchat.sms``: kept as a keyed hash so a STOP is still honoured), and bulk sends' recipient
lines, emptied of everything but the application's external id (the bulk's totals stay true).

SQLite keeps deleted bytes in free pages and the write-ahead log; ``jobchat.privacy.scrub``
takes care of those (secure_delete, the search index's merge, a checkpoint after the commit).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from jobchat.activity.models import Activity
from jobchat.auth.models import Credential
from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.schemas import MemberOut
from jobchat.conversations.unread import change, shift_totals, unread_extra
from jobchat.directory.models import Application, User
from jobchat.events.actions import emit
from jobchat.events.models import Event, EventType
from jobchat.events.queries import latest_event_id
from jobchat.events.sequencer import sequence_within
from jobchat.files.models import Attachment
from jobchat.mail.models import InboundEmail, SentEmail
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.privacy.audit import Party, record
from jobchat.privacy.models import AuditAction, AuditEntry, PartyType
from jobchat.privacy.purge import (
    chunks,
    conversations_of,
    count_delete,
    delete_jobs,
    erase_attachments,
    erase_deliveries,
    erase_messages,
    erase_scheduled,
    keep_event_numbering,
    prune_event,
    settle_conversations,
)
from jobchat.privacy.scrub import forget_search_terms
from jobchat.push.models import PushSubscription
from jobchat.scheduling.bulk.models import BulkRecipient, RecipientStatus
from jobchat.scheduling.models import ScheduledMessage
from jobchat.sms.models import InboundSms, SmsConsentChange
from jobchat.webhooks.actions import forget

# The counts an erasure answers with, all present (zero when nothing of the kind was found).
COUNTED = (
    "messages",
    "conversations",
    "attachments",
    "deliveries",
    "emails",
    "texts",
    "scheduled_messages",
    "jobs",
    "events",
    "activity",
    "search_entries",
    "push_subscriptions",
    "credentials",
    "applications",
    "consent_changes",
    "webhook_events",
)


def do_erase_candidate(
    session: Session, candidate: User, *, actor: Party, now: datetime
) -> dict[str, int]:
    """Erase ``candidate`` (see the module's docstring); returns the counts of what went."""
    cid = candidate.id
    counts: Counter[str] = Counter()
    # Events still waiting for their number are erased like the others (PostgreSQL).
    sequence_within(session)
    newest_event = latest_event_id(session)
    threads = set(
        session.scalars(select(Conversation.id).where(Conversation.candidate_id == cid)).all()
    )
    in_threads: set[int] = set()
    for part in chunks(threads):
        in_threads.update(
            session.scalars(select(Message.id).where(Message.conversation_id.in_(part))).all()
        )
    elsewhere = set(
        session.scalars(
            select(Message.id).where(
                Message.author_id == cid, Message.conversation_id.not_in(threads or {0})
            )
        ).all()
    )
    others = conversations_of(session, elsewhere)
    # Conversations they were in without being their context (a job's relocation chat): the
    # events there name them among the members, and stay for everyone else.
    member_of = set(
        session.scalars(select(Member.conversation_id).where(Member.user_id == cid)).all()
    )
    # Webhook events about the threads or the person (their messages' go with the messages).
    counts["webhook_events"] += forget(session, conversation_ids=threads, candidate_ids=[cid])
    _leave_threads(session, threads, newest_event, now, counts)
    erase_messages(session, in_threads | elsewhere, now=now, counts=counts)
    settle_conversations(session, others | threads, elsewhere)
    _erase_thread_rest(session, threads, now, counts)
    _erase_person(session, candidate, threads, now, counts)
    counts["conversations"] = len(threads)
    _forget_in_events(session, member_of - threads, candidate.ext_id)
    _forget_addresses(session, cid)
    keep_event_numbering(session, newest_event, now)
    forget_search_terms(session)
    answer = {name: int(counts.get(name, 0)) for name in COUNTED}
    record(
        session,
        AuditAction.candidate_erased,
        now=now,
        actor=actor,
        subject=Party.person(candidate),
        details=answer,
    )
    return answer


def was_erased(session: Session, ext_id: str) -> bool:
    """Whether a candidate with this external id was erased (the audit log says so)."""
    found = session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.action == AuditAction.candidate_erased,
            AuditEntry.subject_type == PartyType.candidate,
            AuditEntry.subject_ref == ext_id,
        )
        .limit(1)
    )
    return found is not None


def _forget_in_events(session: Session, conversation_ids: set[int], ext_id: str) -> None:
    """Events of conversations that stay, which list the candidate among their members (a
    newcomer's copy of member.added carries the conversation with its members, names and
    all): the candidate leaves those lists. Their own events went with their user id."""

    def is_them(value: Any) -> bool:
        return _is_person(value, ext_id)

    for part in chunks(conversation_ids):
        for event in session.scalars(select(Event).where(Event.conversation_id.in_(part))):
            # Dropped from every list, replaced by None elsewhere.
            prune_event(event, is_them, from_lists=True)
    session.flush()


def _is_person(value: Any, ext_id: str) -> bool:
    """A candidate as the API names one (``MemberOut``, an author): their external id and kind."""
    return (
        isinstance(value, dict)
        and value.get("kind") == "candidate"
        and value.get("id") == ext_id
        and "name" in value
    )


def _forget_addresses(session: Session, candidate_id: int) -> None:
    """The audit entries of what the candidate did (a deletion for everyone) stay, naming them
    by id; the address they did it from is personal data of theirs, and goes."""
    session.execute(
        update(AuditEntry)
        .where(
            AuditEntry.actor_type == PartyType.candidate,
            AuditEntry.actor_id == candidate_id,
            AuditEntry.ip.is_not(None),
        )
        .values(ip=None)
        .execution_options(synchronize_session=False)
    )


def _leave_threads(
    session: Session, threads: set[int], newest_event: int, now: datetime, counts: Counter[str]
) -> None:
    """Every member leaves the candidate's threads: staff get ``member.removed`` (their open
    pages reload and their inbox drops it, as when anyone leaves), with their badge less what
    was unread there. The candidate's own member rows go silently: the person goes too."""
    if not threads:
        return
    # Events of these threads carry their messages, names and previews: all go, first, so the
    # member.removed events written below are the only ones left.
    for part in chunks(threads):
        counts["events"] += count_delete(
            session, delete(Event).where(Event.conversation_id.in_(part))
        )
    # Before the events below are numbered: on SQLite they would otherwise take the ids of the
    # ones just deleted, below what every stream has read, and reach nobody.
    keep_event_numbering(session, newest_event, now)
    members = session.scalars(
        select(Member)
        .where(Member.conversation_id.in_(sorted(threads)))
        .order_by(Member.conversation_id, Member.user_id)
    ).all()
    deltas: dict[int, tuple[int, int]] = {}
    for member in members:
        convs, msgs = deltas.get(member.user_id, (0, 0))
        d_convs, d_msgs = change(member.unread_count, 0)
        deltas[member.user_id] = (convs + d_convs, msgs + d_msgs)
    session.flush()
    for part in chunks(threads):
        session.execute(
            delete(Member)
            .where(Member.conversation_id.in_(part))
            .execution_options(synchronize_session=False)
        )
    for member in members:
        session.expunge(member)
    totals = shift_totals(session, deltas)
    for member in members:
        user = session.get(User, member.user_id)
        if user is None or not user.is_staff:
            continue
        emit(
            session,
            EventType.member_removed,
            now=now,
            conversation_id=member.conversation_id,
            user_id=member.user_id,
            data={"member": _member(user)},
            extras={member.user_id: unread_extra(0, totals[member.user_id])},
        )


def _member(user: User) -> dict[str, object]:
    """A staff member as ``member.removed`` names them (``jobchat.conversations.actions``)."""
    return MemberOut(
        id=user.ext_id,
        name=user.name,
        kind="staff",
        organization=user.organization.ext_id if user.organization else None,
    ).model_dump(mode="json")


def _erase_thread_rest(
    session: Session, threads: set[int], now: datetime, counts: Counter[str]
) -> None:
    """What the candidate's threads hold besides messages: uploads no message took, activity
    lines, scheduled sends, email and SMS records filed there; and the thread rows are left as
    ids only, pointing at nobody."""
    if not threads:
        return
    for part in chunks(threads):
        counts["attachments"] += erase_attachments(
            session, select(Attachment.id).where(Attachment.conversation_id.in_(part)), now
        )
        counts["activity"] += count_delete(
            session, delete(Activity).where(Activity.conversation_id.in_(part))
        )
        erase_scheduled(
            session,
            session.scalars(
                select(ScheduledMessage.id).where(ScheduledMessage.conversation_id.in_(part))
            ).all(),
            counts,
        )
        counts["emails"] += count_delete(
            session, delete(InboundEmail).where(InboundEmail.conversation_id.in_(part))
        )
        counts["emails"] += count_delete(
            session, delete(SentEmail).where(SentEmail.conversation_id.in_(part))
        )
        counts["texts"] += count_delete(
            session, delete(InboundSms).where(InboundSms.conversation_id.in_(part))
        )
        session.execute(
            update(BulkRecipient)
            .where(BulkRecipient.conversation_id.in_(part))
            .values(conversation_id=None, message_id=None, reason=None)
            .execution_options(synchronize_session=False)
        )
    counts["jobs"] += delete_jobs(session, "conversation_id", threads)


def _erase_person(
    session: Session, candidate: User, threads: set[int], now: datetime, counts: Counter[str]
) -> None:
    """The person: what names them directly, then their user row."""
    cid = candidate.id
    delivery_rows = session.execute(
        select(Delivery.id, Delivery.provider_id).where(Delivery.recipient_id == cid)
    ).all()
    erase_deliveries(
        session, [d for d, _ in delivery_rows], [p for _, p in delivery_rows if p], counts
    )
    counts["attachments"] += erase_attachments(
        session, select(Attachment.id).where(Attachment.uploader_id == cid), now
    )
    counts["emails"] += count_delete(session, delete(SentEmail).where(SentEmail.user_id == cid))
    emails = [InboundEmail.user_id == cid]
    if candidate.email:
        # Rejected mail from them (no thread, no user) is found by the address, in any case.
        address = candidate.email.lower()
        emails.append(func.lower(InboundEmail.from_address) == address)
        emails.append(func.lower(InboundEmail.envelope_from) == address)
    counts["emails"] += count_delete(session, delete(InboundEmail).where(or_(*emails)))
    texts = [InboundSms.candidate_id == cid]
    if candidate.phone:
        texts.append(InboundSms.from_number == candidate.phone)
    counts["texts"] += count_delete(session, delete(InboundSms).where(or_(*texts)))
    counts["consent_changes"] += count_delete(
        session,
        delete(SmsConsentChange).where(
            or_(SmsConsentChange.candidate_id == cid, SmsConsentChange.actor_id == cid)
        ),
    )
    counts["jobs"] += delete_jobs(session, "user_id", [cid])
    subscriptions = session.scalars(
        select(PushSubscription.id).where(PushSubscription.user_id == cid)
    ).all()
    counts["jobs"] += delete_jobs(session, "subscription_id", subscriptions)
    counts["push_subscriptions"] += count_delete(
        session, delete(PushSubscription).where(PushSubscription.user_id == cid)
    )
    counts["credentials"] += count_delete(
        session, delete(Credential).where(Credential.user_id == cid)
    )
    session.execute(delete(HiddenMessage).where(HiddenMessage.user_id == cid))
    session.execute(delete(Member).where(Member.user_id == cid))
    counts["events"] += count_delete(session, delete(Event).where(Event.user_id == cid))
    counts["activity"] += count_delete(session, delete(Activity).where(Activity.actor_id == cid))
    applications = session.scalars(
        select(Application.id).where(Application.candidate_id == cid)
    ).all()
    pending = BulkRecipient.status == RecipientStatus.pending
    for part in chunks(applications):
        # Not yet messaged: never will be (the bulk's runner takes only pending lines).
        session.execute(
            update(BulkRecipient)
            .where(BulkRecipient.application_id.in_(part))
            .values(
                application_id=None,
                conversation_id=None,
                message_id=None,
                reason=None,
                status=case((pending, RecipientStatus.skipped.value), else_=BulkRecipient.status),
                code=case((pending, "erased"), else_=BulkRecipient.code),
                done_at=case((pending, now), else_=BulkRecipient.done_at),
            )
            .execution_options(synchronize_session=False)
        )
    # The threads stay as ids (see the module's docstring), pointing at no person nor job,
    # under a key of their own: SQLite may give a new person or application the ids these had,
    # and the context key made of those ids must find a new thread then, not this one.
    for part in chunks(threads):
        session.execute(
            update(Conversation)
            .where(Conversation.id.in_(part))
            .values(
                context_key="erased:" + cast(Conversation.id, String),
                job_id=None,
                partner_id=None,
            )
            .execution_options(synchronize_session=False)
        )
    for column in (
        Conversation.candidate_id,
        Conversation.created_by_id,
        Conversation.ended_by_id,
        Conversation.employer_user_id,
        Conversation.agency_user_id,
    ):
        session.execute(
            update(Conversation)
            .where(column == cid)
            .values({column.key: None})
            .execution_options(synchronize_session=False)
        )
    for part in chunks(applications):
        session.execute(
            update(Conversation)
            .where(Conversation.application_id.in_(part))
            .values(application_id=None)
            .execution_options(synchronize_session=False)
        )
        counts["applications"] += count_delete(
            session, delete(Application).where(Application.id.in_(part))
        )
    # (messages.deleted_by_id: only authors delete for everyone, and theirs are gone.)
    session.flush()
    session.expunge(candidate)
    session.execute(delete(User).where(User.id == cid).execution_options(synchronize_session=False))

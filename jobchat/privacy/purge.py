"""Erasing messages for good: the part a candidate's erasure and retention by age share.

Deleting a message for everyone (``jobchat.messages.actions``) keeps its row as a tombstone;
erasing deletes the row and every copy of what it said or who it went to: deliveries and the
email and SMS records made for them, the events that carry it (and the previews other events
hold of it), activity lines, hidden-message rows, its files (rows now, stored objects by a job
queued here), its search entry, scheduled sends, queued jobs and webhook events that name it.
The conversations that stay keep correct read state: members' unread counts and badge totals
lose what was erased, and ``last_message_id`` points at what is left.

Everything happens in the caller's transaction: nothing is half erased.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    any_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from jobchat.activity.models import Activity
from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.unread import Totals, change, shift_totals
from jobchat.events.models import Event, EventType
from jobchat.events.queries import latest_event_id
from jobchat.files.actions import remove_attachments
from jobchat.files.models import Attachment
from jobchat.jobqueue.models import QueuedJob
from jobchat.mail.models import InboundEmail, SentEmail
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.scheduling.bulk.models import BulkRecipient
from jobchat.scheduling.models import ScheduledMessage
from jobchat.search.index import unindex_messages
from jobchat.sms.models import InboundSms, SmsStatusReport
from jobchat.webhooks.actions import forget

# Ids go into IN lists in chunks of this many (SQLite takes at most 32,766 parameters).
CHUNK = 500

# Events that may hold a preview of another message (a conversation's last_message).
_PREVIEW_EVENTS = (
    EventType.member_added,
    EventType.message_deleted,
    EventType.conversation_updated,
    EventType.conversation_read,
)


def chunks(ids: Collection[int]) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def among(session: Session, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """``column IN ids``: on PostgreSQL as ``= ANY(array)``, one parameter, which plans in a
    tenth of the time of 500 (an erasure makes hundreds of these statements)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(ids, ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


def count_delete(session: Session, statement: Any) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_jobs(session: Session, key: str, ids: Collection[int]) -> int:
    """Delete queued (or finished) jobs whose payload names one of ``ids`` under ``key``. A job
    being run finds its row gone when it settles, and its subject gone before that."""
    total = 0
    for part in chunks(ids):
        total += count_delete(
            session,
            delete(QueuedJob).where(among(session, QueuedJob.payload[key].as_integer(), part)),
        )
    return total


def erase_messages(
    session: Session, message_ids: Collection[int], *, now: datetime, counts: Counter[str]
) -> None:
    """Erase these messages and every copy of them (see the module's docstring), adding what
    went to ``counts``. The conversations stay; ``settle_conversations`` fixes them after."""
    if not message_ids:
        return
    ids = sorted(set(message_ids))
    counts["webhook_events"] += forget(session, message_ids=ids)
    _uncount_unread(session, ids)
    delivery_ids: list[int] = []
    provider_ids: list[str] = []
    for part in chunks(ids):
        for delivery_id, provider_id in session.execute(
            select(Delivery.id, Delivery.provider_id).where(
                among(session, Delivery.message_id, part)
            )
        ):
            delivery_ids.append(delivery_id)
            if provider_id:
                provider_ids.append(provider_id)
    erase_deliveries(session, delivery_ids, provider_ids, counts)
    counts["jobs"] += delete_jobs(session, "message_id", ids)
    scheduled: list[int] = []
    for part in chunks(ids):
        scheduled += session.scalars(
            select(ScheduledMessage.id).where(among(session, ScheduledMessage.message_id, part))
        ).all()
    erase_scheduled(session, scheduled, counts)
    for part in chunks(ids):
        counts["emails"] += count_delete(
            session, delete(InboundEmail).where(among(session, InboundEmail.message_id, part))
        )
        counts["texts"] += count_delete(
            session, delete(InboundSms).where(among(session, InboundSms.message_id, part))
        )
        session.execute(
            update(BulkRecipient)
            .where(among(session, BulkRecipient.message_id, part))
            .values(message_id=None, conversation_id=None, reason=None)
            .execution_options(synchronize_session=False)
        )
        counts["events"] += count_delete(
            session, delete(Event).where(among(session, Event.message_id, part))
        )
        counts["activity"] += count_delete(
            session, delete(Activity).where(among(session, Activity.message_id, part))
        )
        session.execute(delete(HiddenMessage).where(among(session, HiddenMessage.message_id, part)))
        counts["attachments"] += erase_attachments(
            session, select(Attachment.id).where(among(session, Attachment.message_id, part)), now
        )
    unindex_messages(session, ids)
    counts["search_entries"] += len(ids)
    for part in chunks(ids):
        counts["messages"] += count_delete(
            session, delete(Message).where(among(session, Message.id, part))
        )


def keep_event_numbering(session: Session, newest: int, now: datetime) -> None:
    """After events were deleted: if the newest (``newest``, read before) was among them, put a
    placeholder that reaches nobody in its place. SQLite numbers a new row max(id) + 1, and
    would otherwise hand out ids again below what clients and hubs have already read (see
    ``jobchat.events.actions.do_prune_events``, which keeps the newest for the same reason)."""
    if session.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's sequence never goes back
    if newest and latest_event_id(session) < newest:
        session.execute(
            insert(Event).values(
                id=newest,
                type=EventType.access_revoked,  # with no user: no hub or client acts on it
                data={},
                created_at=now,
            )
        )


def erase_attachments(session: Session, which: Any, now: datetime) -> int:
    """Delete attachment rows (their names are the uploader's words) and queue the deletion of
    their stored objects and thumbnails (``jobchat.files.actions.remove_attachments``)."""
    ids = list(session.scalars(which))
    if not ids:
        return 0
    for part in chunks(ids):
        remove_attachments(session, part, now)
        session.execute(
            delete(Attachment)
            .where(among(session, Attachment.id, part))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def erase_deliveries(
    session: Session, delivery_ids: Sequence[int], provider_ids: Sequence[str], counts: Counter[str]
) -> None:
    """Deliveries (an address each), the sent-email records and provider status reports made
    for them, and the jobs that would send them."""
    counts["jobs"] += delete_jobs(session, "delivery_id", delivery_ids)
    for part in chunks(delivery_ids):
        counts["emails"] += count_delete(
            session, delete(SentEmail).where(among(session, SentEmail.delivery_id, part))
        )
        counts["deliveries"] += count_delete(
            session, delete(Delivery).where(among(session, Delivery.id, part))
        )
    for start in range(0, len(provider_ids), CHUNK):
        part_sids = list(provider_ids[start : start + CHUNK])
        counts["texts"] += count_delete(
            session, delete(SmsStatusReport).where(SmsStatusReport.provider_sid.in_(part_sids))
        )


def erase_scheduled(session: Session, scheduled_ids: Sequence[int], counts: Counter[str]) -> None:
    """Scheduled sends (their body and subject) and the jobs that would post them."""
    if not scheduled_ids:
        return
    counts["jobs"] += delete_jobs(session, "scheduled_id", scheduled_ids)
    for part in chunks(scheduled_ids):
        counts["scheduled_messages"] += count_delete(
            session, delete(ScheduledMessage).where(among(session, ScheduledMessage.id, part))
        )


def _uncount_unread(session: Session, ids: Sequence[int]) -> None:
    """Members of conversations that stay lose the erased messages they had not read (counted
    as a send counts them: not their own, after their read mark, not deleted, not hidden)."""
    by_member: Counter[tuple[int, int]] = Counter()
    for part in chunks(ids):
        rows = session.execute(
            select(Member.conversation_id, Member.user_id, func.count())
            .join(Message, Message.conversation_id == Member.conversation_id)
            .where(
                among(session, Message.id, part),
                Message.deleted_at.is_(None),
                Message.id > Member.last_read_message_id,
                or_(Message.author_id.is_(None), Message.author_id != Member.user_id),
                ~exists().where(
                    HiddenMessage.message_id == Message.id, HiddenMessage.user_id == Member.user_id
                ),
            )
            .group_by(Member.conversation_id, Member.user_id)
        )
        for conv_id, user_id, n in rows:
            by_member[(conv_id, user_id)] += int(n)
    deltas: dict[int, Totals] = {}
    for (conv_id, user_id), n in sorted(by_member.items()):
        member = session.get(Member, (conv_id, user_id))
        if member is None or member.unread_count <= 0:
            continue
        new = max(0, member.unread_count - n)
        convs, msgs = deltas.get(user_id, (0, 0))
        d_convs, d_msgs = change(member.unread_count, new)
        deltas[user_id] = (convs + d_convs, msgs + d_msgs)
        member.unread_count = new
    session.flush()
    shift_totals(session, deltas)


def settle_conversations(
    session: Session, conversation_ids: Collection[int], erased: Collection[int]
) -> None:
    """After messages of these conversations were erased: ``last_message_id`` names the newest
    message left (None when none is), and the previews events hold of an erased message
    (a newcomer's conversation, what a delete-for-me left showing) become None.

    Members' read marks (and the activity lines' places) come down to the newest message left:
    SQLite numbers a new row max(id) + 1, so when the newest messages of the whole database
    went, a new message gets an id below a mark that named an erased one, and would count as
    read. Brought down, each still covers exactly the messages it covered."""
    gone = set(erased)

    def is_gone(value: Any) -> bool:
        """A copy of a message in ``gone`` in an event's JSON (a dict with its id and a body)."""
        return isinstance(value, dict) and "body" in value and value.get("id") in gone

    for part in chunks(conversation_ids):
        newest = (
            select(func.max(Message.id))
            .where(Message.conversation_id == Conversation.id)
            .scalar_subquery()
        )
        session.execute(
            update(Conversation)
            .where(among(session, Conversation.id, part))
            .values(last_message_id=newest)
            .execution_options(synchronize_session=False)
        )
        # The newest message left, as just written on the conversation (a lookup by key).
        left = func.coalesce(
            select(Conversation.last_message_id)
            .where(Conversation.id == Member.conversation_id)
            .scalar_subquery(),
            0,
        )
        session.execute(
            update(Member)
            .where(among(session, Member.conversation_id, part))
            .values(
                last_read_message_id=case(
                    (Member.last_read_message_id > left, left), else_=Member.last_read_message_id
                ),
                notified_through_id=case(
                    (Member.notified_through_id > left, left), else_=Member.notified_through_id
                ),
            )
            .execution_options(synchronize_session=False)
        )
        left_here = func.coalesce(
            select(Conversation.last_message_id)
            .where(Conversation.id == Activity.conversation_id)
            .scalar_subquery(),
            0,
        )
        session.execute(
            update(Activity)
            .where(
                among(session, Activity.conversation_id, part),
                Activity.after_message_id > left_here,
            )
            .values(after_message_id=left_here)
            .execution_options(synchronize_session=False)
        )
        for event in session.scalars(
            select(Event).where(
                among(session, Event.conversation_id, part), Event.type.in_(_PREVIEW_EVENTS)
            )
        ):
            prune_event(event, is_gone)
    # A push held back for quiet hours names its message: an erased one is not pushed.
    for part in chunks(gone):
        session.execute(
            update(Member)
            .where(among(session, Member.push_held_id, part))
            .values(push_held_id=None)
            .execution_options(synchronize_session=False)
        )
    session.flush()


def prune_event(event: Event, picked: Callable[[Any], bool], *, from_lists: bool = False) -> None:
    """``pruned`` on an event's data and extras, each written back only if it changed."""
    data, changed = pruned(event.data, picked, from_lists=from_lists)
    if changed:
        event.data = data
    extras, changed = pruned(event.extras, picked, from_lists=from_lists)
    if changed:
        event.extras = extras


def pruned(
    value: Any, picked: Callable[[Any], bool], *, from_lists: bool = False
) -> tuple[Any, bool]:
    """``value`` (an event's JSON) with every part ``picked`` replaced by None, or dropped from
    the list it is in with ``from_lists``; and whether anything was. What is unchanged is
    returned as it was (the caller writes back only what changed)."""
    if picked(value):
        return None, True
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], hit = pruned(item, picked, from_lists=from_lists)
            changed = changed or hit
        return (out if changed else value), changed
    if isinstance(value, list):
        kept = [item for item in value if not picked(item)] if from_lists else value
        items = [pruned(item, picked, from_lists=from_lists) for item in kept]
        if len(kept) != len(value) or any(hit for _, hit in items):
            return [item for item, _ in items], True
        return value, False
    return value, False


def conversations_of(session: Session, message_ids: Collection[int]) -> set[int]:
    found: set[int] = set()
    for part in chunks(message_ids):
        found.update(
            session.scalars(
                select(Message.conversation_id).where(among(session, Message.id, part)).distinct()
            ).all()
        )
    return found

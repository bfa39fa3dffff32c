"""Sending and deleting messages: the only code that writes messages and deliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jobchat.activity.actions import record_activity
from jobchat.activity.models import ActivityKind
from jobchat.conversations.actions import do_start_conversation, read_event
from jobchat.conversations.context import Context
from jobchat.conversations.models import Conversation, Member, Status
from jobchat.conversations.unread import change, shift_totals, unread_extra, unread_extras
from jobchat.db import json_text
from jobchat.directory.models import User
from jobchat.errors import Conflict
from jobchat.events.actions import NewEvent, emit, emit_all
from jobchat.events.models import Event, EventType
from jobchat.events.sequencer import sequence_within
from jobchat.files.actions import claim_attachments, remove_message_attachments, take_attachments
from jobchat.jobqueue.actions import enqueue
from jobchat.messages.audience import audience
from jobchat.messages.bump import bump
from jobchat.messages.models import Channel, Delivery, DeliveryStatus, HiddenMessage, Message
from jobchat.messages.outgoing import Limits as Limits
from jobchat.messages.outgoing import Outgoing as Outgoing
from jobchat.messages.outgoing import check_outgoing as check_outgoing
from jobchat.messages.outgoing import check_text, find_recipient
from jobchat.messages.queries import latest_visible, sent_with_key
from jobchat.messages.schemas import MessageOut
from jobchat.messages.store import NewMessage, note_sent, store_message
from jobchat.notifications.queue import enqueue_ladder
from jobchat.privacy.audit import Party, record
from jobchat.privacy.models import AuditAction, PartyType
from jobchat.search.index import unindex_messages
from jobchat.sms.quiet import sms_hold
from jobchat.webhooks import events as webhook_events

# Limits, Outgoing and check_outgoing (jobchat.messages.outgoing) are imported "as" themselves
# above: their callers import them from here, where they lived first.

# The jobs that send an email- or SMS-channel message (jobchat.mail.outbound and
# jobchat.sms.outbound run them).
EMAIL_DELIVERY_JOB = "email.delivery"
SMS_DELIVERY_JOB = "sms.delivery"
DELIVERY_JOBS = {Channel.email: EMAIL_DELIVERY_JOB, Channel.sms: SMS_DELIVERY_JOB}


def do_send_message(
    session: Session,
    *,
    actor: User,
    conv: Conversation,
    member: Member,
    out: Outgoing,
    limits: Limits,
    now: datetime,
    admit: Callable[[], None] | None = None,
) -> tuple[Message, bool]:
    """Store a message, queue its deliveries, update read state; returns (message, replayed).

    ``replayed`` is true when the idempotency key matched an earlier send, which is returned
    unchanged instead of storing the message twice. ``admit`` (may this user post now? are they
    sending too fast?) runs only for a new message: a retry of one already stored must learn
    that it went out, even if the conversation has been ended since.
    """
    if out.idempotency_key is not None:
        earlier = sent_with_key(session, actor.id, out.idempotency_key)
        if earlier is not None:
            return _replay(earlier, conv, out), True
    if admit is not None:
        admit()

    body = out.body.strip()
    subject = (out.subject or "").strip() or None
    if not out.received:
        check_text(body, subject, out.channel, limits, with_files=bool(out.attachments))
        recipient, address = find_recipient(session, actor, conv, out.channel, limits)
    else:
        recipient = address = None
    files = take_attachments(
        session, author_id=actor.id, conversation_id=conv.id, ids=out.attachments
    )

    # The delivery is inserted with the message (and rolled back with it), and the collection
    # is given to the message as loaded, so rendering the answer needs no further query.
    deliveries = []
    if recipient is not None and address is not None:
        # A text in the candidate's night is held for their morning (jobchat.sms.quiet).
        held = (
            sms_hold(recipient, now, limits.sms_quiet, default_region=limits.default_region)
            if out.channel is Channel.sms
            else None
        )
        deliveries.append(
            Delivery(
                recipient_id=recipient.id,
                recipient=recipient,
                channel=out.channel,
                address=address,
                status=DeliveryStatus.held if held else DeliveryStatus.queued,
                held_until=held,
                next_attempt_at=held or now,
                created_at=now,
                updated_at=now,
            )
        )
    new = NewMessage(
        conversation_id=conv.id,
        author=actor,
        body=body,
        subject=subject,
        channel=out.channel,
        created_at=now,
        idempotency_key=out.idempotency_key,
    )
    filenames = [f.filename for f in files]
    stored = store_message(session, new, deliveries=deliveries, filenames=filenames)
    message = stored.message
    if message is None:
        # A retry with the same key came first (a concurrent one that won the race, as the
        # lookup above found none): answer with its message.
        earlier = sent_with_key(session, actor.id, out.idempotency_key or "")
        if earlier is None:  # not expected (the row it met is committed): a clear 409 all the same
            raise Conflict(
                "This idempotency key was already used for a different message.",
                code="idempotency_key_reused",
            )
        return _replay(earlier, conv, out), True
    if deliveries:
        session.flush()  # their ids, for their jobs
    claim_attachments(message, files)
    for delivery in deliveries:
        job = DELIVERY_JOBS[Channel(delivery.channel)]
        enqueue(session, job, {"delivery_id": delivery.id}, now=now, run_at=delivery.held_until)
    # Who is told of it, how and when (push, text; email starts its clock below): the
    # notification ladder decides in the worker, if anyone could be. Webhooks hear of it below.
    heard_by = stored.audience
    if heard_by is None:  # not asked by the INSERT (SQLite)
        heard_by = audience(session, conversation_id=conv.id, author_id=actor.id, sent_at=now)
    if heard_by.anyone_to_tell:
        enqueue_ladder(session, message.id, now)

    if conv.status == Status.ended:
        # A staff member writing again reopens the conversation (check_post keeps others out).
        conv.status = Status.open
        conv.ended_at = None
        conv.ended_by_id = None
        # Drawn just before the message that reopened it (conv.last_message_id is still the
        # one before it here).
        line = record_activity(
            session,
            conversation_id=conv.id,
            kind=ActivityKind.reopened,
            actor=actor,
            after_message_id=conv.last_message_id,
            message_id=message.id,
            now=now,
        )
        emit(
            session,
            EventType.conversation_updated,
            now=now,
            conversation_id=conv.id,
            data={"status": Status.open, "reopened_by": actor.ext_id, "activity": line},
        )
        webhook_events.conversation_reopened(session, conv, actor, now)
    # Activity never moves back, even if the clock does: the inbox is ordered by it.
    active_at = max(conv.last_activity_at, now)
    # Writing into a conversation means having read it.
    had_unread = member.unread_count
    # The recipients' new counts (RETURNING): each has one more unread message, and one more
    # conversation with something unread if it is their first. The event carries them.
    bumped = bump(
        session,
        conv,
        member,
        message.id,
        active_at=active_at,
        notify_due_at=now + limits.notify_delay,
        lock_writer=bool(had_unread),
    )
    counts = bumped.counts
    deltas = {user_id: (int(count == 1), 1) for user_id, count in counts.items()}
    if had_unread:
        deltas[actor.id] = change(had_unread, 0)
    totals = shift_totals(session, deltas, locked=bumped.users_locked)
    webhook_events.message_created(session, message, conv, now, enabled=heard_by.webhooks)
    payload = _payload(message)
    session.info.setdefault(_SENT_SHOWN, {})[message.id] = payload
    created = NewEvent(
        EventType.message_created,
        conversation_id=conv.id,
        message_id=message.id,
        data=payload,
        extras={
            user_id: unread_extra(count, totals[user_id])
            for user_id, count in sorted(counts.items())
        },
    )
    # The writer's read marker moved too, if they had something unread: written with the
    # message's event, after it.
    read = [read_event(conv, member, totals[actor.id])] if had_unread else []
    emit_all(session, [created, *read], now=now)
    # Last: a caller's savepoint around the send (a bulk send's) ends after it.
    note_sent(session, message)
    return message, False


def do_start_with_message(
    session: Session,
    *,
    actor: User,
    context: Context,
    existing: Conversation | None,
    out: Outgoing,
    limits: Limits,
    now: datetime,
    admit: Callable[[Conversation | None], None] | None = None,
) -> tuple[Conversation, Message, bool]:
    """Open the conversation of ``context`` with its first message, in the caller's one
    transaction: nobody ever sees it empty, and a message that fails its checks leaves no
    conversation behind. Returns (conversation, message, replayed).

    A retry with the same idempotency key answers with the conversation and message the first
    attempt made, whatever happened since. Where the conversation exists already (someone
    opened it meanwhile) the message goes into it. ``admit`` (given that conversation, or None:
    may the actor post there now? are they sending too fast?) runs before anything is written.
    """
    if out.idempotency_key is not None:
        earlier = sent_with_key(session, actor.id, out.idempotency_key)
        if earlier is not None:
            conv = session.get_one(Conversation, earlier.conversation_id)
            if conv.context_key != context.key:
                # The key went with the first message of another conversation: this is not a
                # retry of that send, and answering with it would drop this message unseen.
                raise Conflict(
                    "This idempotency key was already used for a message in another conversation.",
                    code="idempotency_key_reused",
                )
            return conv, _replay(earlier, conv, out), True
    if admit is not None:
        admit(existing)
    conv, member, _created = do_start_conversation(
        session, actor=actor, context=context, existing=existing, now=now
    )
    message, replayed = do_send_message(
        session, actor=actor, conv=conv, member=member, out=out, limits=limits, now=now
    )
    return conv, message, replayed


def _payload(message: Message) -> dict[str, Any]:
    """The message as staff see it; the stream leaves out the deliveries for candidates."""
    return MessageOut.of(message, show_deliveries=True).model_dump(mode="json")


# The staff view of each message a transaction sent (its event's payload), by message id, in
# its session's info: the send's answer is the same JSON, made once a send.
_SENT_SHOWN = "jobchat_sent_shown"


def sent_json(session: Session, message: Message) -> str:
    """``message`` as JSON text, as staff see it (``MessageOut`` with its deliveries): the
    answer to its author. For a message this transaction sent, the payload its event carries;
    for another (a retry's stored message), made now."""
    payload = session.info.get(_SENT_SHOWN, {}).get(message.id)
    return json_text.dumps(payload if payload is not None else _payload(message))


def _preview(message: Message) -> dict[str, Any]:
    """The message as an inbox preview (a conversation's last_message) shows it."""
    return MessageOut.of(message).model_dump(mode="json")


def _scrub_copies(session: Session, conv_id: int, message: Message) -> None:
    """Blank the other copies of a message deleted for everyone that the event log holds: as
    the last message of a conversation a newcomer was given, or of one after a delete-for-me.
    Only events written since the message can hold one. Webhook deliveries of it, too."""
    webhook_events.message_scrubbed(session, message)
    since = select(func.min(Event.id)).where(Event.message_id == message.id).scalar_subquery()
    candidates = session.scalars(
        select(Event).where(
            Event.conversation_id == conv_id,
            Event.type.in_([EventType.member_added, EventType.message_deleted]),
            Event.id > func.coalesce(since, 0),
        )
    )
    tombstone = _preview(message)
    for event in candidates:
        if (event.data.get("last_message") or {}).get("id") == message.id:
            event.data = {**event.data, "last_message": tombstone}
        if event.extras:
            event.extras = {
                uid: _with_tombstone(extra, message.id, tombstone)
                for uid, extra in event.extras.items()
            }


def _with_tombstone(extra: Any, message_id: int, tombstone: dict[str, Any]) -> Any:
    seen = extra.get("data", {}).get("conversation") if isinstance(extra, dict) else None
    if not seen or (seen.get("last_message") or {}).get("id") != message_id:
        return extra
    conversation = {**seen, "last_message": tombstone}
    return {**extra, "data": {**extra["data"], "conversation": conversation}}


def _replay(earlier: Message, conv: Conversation, out: Outgoing) -> Message:
    same = (
        earlier.conversation_id == conv.id
        and earlier.body == out.body.strip()
        and earlier.channel == out.channel
        and earlier.subject == ((out.subject or "").strip() or None)
        and tuple(a.id for a in earlier.attachments) == out.attachments
    )
    if not same:
        raise Conflict(
            "This idempotency key was already used for a different message.",
            code="idempotency_key_reused",
        )
    return earlier


def do_delete_message(
    session: Session,
    *,
    actor: User,
    message: Message,
    conv: Conversation,
    member: Member,
    for_everyone: bool,
    now: datetime,
) -> None:
    """Delete for everyone (tombstone, author only: checked by access) or hide for the actor."""
    if for_everyone:
        if message.is_deleted:
            return
        # Its events may still wait for their number (PostgreSQL): numbered first, so that the
        # tombstone below reaches them. First thing, before this transaction locks any row a
        # sequencer (which it waits for) may need.
        sequence_within(session)
        message.deleted_at = now
        message.deleted_by_id = actor.id
        record(
            session,
            AuditAction.message_deleted,
            now=now,
            actor=Party.person(actor),
            subject=Party(PartyType.message, message.id),
            details={"conversation": conv.id, "channel": message.channel},
        )
        unindex_messages(session, [message.id])
        # An email or SMS that has not gone out yet (or is held for the night) never will.
        for delivery in message.deliveries:
            if delivery.status in Delivery.UNSENT:
                delivery.status = DeliveryStatus.cancelled
                delivery.updated_at = now
        # The content stays on the message row for audit; the event log, which clients replay,
        # keeps only the tombstone.
        session.execute(
            update(Event)
            .where(Event.message_id == message.id, Event.type == EventType.message_created)
            .values(data=_payload(message))
        )
        _scrub_copies(session, conv.id, message)
        # Its files are no longer served, and their bytes are deleted by a job.
        remove_message_attachments(session, message.id, now)
        hidden_by = select(HiddenMessage.user_id).where(HiddenMessage.message_id == message.id)
        uncounted = session.execute(
            update(Member)
            .where(
                Member.conversation_id == conv.id,
                Member.user_id != message.author_id,
                Member.last_read_message_id < message.id,
                Member.unread_count > 0,
                Member.user_id.not_in(hidden_by),
            )
            .values(unread_count=Member.unread_count - 1)
            .returning(Member.user_id, Member.unread_count)
        )
        shift_totals(session, {user_id: change(count + 1, count) for user_id, count in uncounted})
        emit(
            session,
            EventType.message_deleted,
            now=now,
            conversation_id=conv.id,
            message_id=message.id,
            data={"id": message.id, "for": "everyone", "message": _payload(message)},
            extras=unread_extras(session, conv.id),
        )
        webhook_events.message_deleted(session, message, conv, actor, now)
        return

    if session.get(HiddenMessage, (message.id, actor.id)) is not None:
        return
    session.add(HiddenMessage(message_id=message.id, user_id=actor.id, hidden_at=now))
    counted_as_unread = (
        not message.is_deleted
        and message.author_id != actor.id
        and message.id > member.last_read_message_id
    )
    if counted_as_unread and member.unread_count > 0:
        shift_totals(session, {actor.id: change(member.unread_count, member.unread_count - 1)})
        member.unread_count -= 1
    # Only the actor receives this one, so it can carry what their inbox shows next.
    session.flush()
    latest = latest_visible(session, actor.id, conv.id)
    emit(
        session,
        EventType.message_deleted,
        now=now,
        conversation_id=conv.id,
        user_id=actor.id,
        message_id=message.id,
        data={
            "id": message.id,
            "for": "me",
            "last_message": _preview(latest) if latest is not None else None,
        },
        extras=unread_extras(session, conv.id, [actor.id]),
    )


def do_cancel_deliveries_to(session: Session, recipient_id: int, *, now: datetime) -> None:
    """Emails and texts to this person that have not gone out yet never will (they were
    deactivated): their jobs find the delivery no longer queued and do nothing."""
    session.execute(
        update(Delivery)
        .where(Delivery.recipient_id == recipient_id, Delivery.status.in_(Delivery.UNSENT))
        .values(
            status=DeliveryStatus.cancelled,
            last_error="the recipient was deactivated",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )

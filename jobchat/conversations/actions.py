"""Starting, reading and ending conversations: the only code that writes them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobchat.activity.actions import record_activity
from jobchat.activity.models import ActivityKind
from jobchat.conversations.context import Context
from jobchat.conversations.membership import expected_member_ids
from jobchat.conversations.models import Conversation, Member, Status
from jobchat.conversations.render import render_conversation
from jobchat.conversations.schemas import MemberOut
from jobchat.conversations.unread import Totals, change, shift_totals, unread_extra, unread_extras
from jobchat.directory.models import User
from jobchat.errors import Forbidden, Invalid
from jobchat.events.actions import NewEvent, emit, emit_all, json_time
from jobchat.events.models import EventType
from jobchat.messages.models import Message
from jobchat.messages.queries import count_unread
from jobchat.webhooks import events as webhook_events


def do_start_conversation(
    session: Session,
    *,
    actor: User,
    context: Context,
    existing: Conversation | None,
    now: datetime,
) -> tuple[Conversation, Member, bool]:
    """Get or create the one conversation of this kind and context.

    Returns it, the actor's member row in it, and whether it was created.

    The unique ``context_key`` is the guarantee: when two requests race to create it, one insert
    fails, is rolled back to its savepoint, and that request answers with the winner's row.
    """
    created = False
    conv = existing
    if conv is None:
        conv = Conversation(
            kind=context.kind,
            context_key=context.key,
            job_id=context.job.id if context.job else None,
            candidate_id=context.candidate.id if context.candidate else None,
            application_id=context.application.id if context.application else None,
            partner_id=context.partner.id if context.partner else None,
            employer_user_id=context.employer_user.id if context.employer_user else None,
            agency_user_id=context.agency_user.id if context.agency_user else None,
            status=Status.open,
            created_at=now,
            created_by_id=actor.id,
            last_activity_at=now,
        )
        try:
            with session.begin_nested():
                session.add(conv)
                session.flush()
            created = True
        except IntegrityError:
            conv = session.scalars(
                select(Conversation).where(Conversation.context_key == context.key)
            ).one()
    sync_members(session, conv, now=now)
    member = session.get(Member, (conv.id, actor.id))
    if member is None:
        raise Forbidden("You may not start this kind of conversation.", code="cannot_start")
    if created:
        webhook_events.conversation_created(session, conv, actor, now)
    return conv, member, created


def sync_members(session: Session, conv: Conversation, *, now: datetime) -> None:
    """Make the stored members match the rules, with a member.added / member.removed event for
    each difference (carrying the member as the API shows it).

    A newcomer's own copy of member.added also carries the conversation as they now see it, and
    a leaver's copy of member.removed their badge without it: a client needs nothing else.
    """
    expected = expected_member_ids(session, conv)
    current = {m.user_id: m for m in conv.members}
    changed = expected ^ current.keys()
    if not changed:
        return
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(changed)))}
    added = []
    for user_id in sorted(expected - current.keys()):
        # A newcomer sees the history but starts with nothing unread.
        member = Member(
            conversation_id=conv.id,
            user_id=user_id,
            last_read_message_id=conv.last_message_id or 0,
            unread_count=0,
            last_activity_at=conv.last_activity_at,
            joined_at=now,
        )
        session.add(member)
        conv.members.append(member)
        added.append(member)
    session.flush()
    for member in added:
        user = users[member.user_id]
        seen = render_conversation(session, user, conv, member).model_dump(mode="json")
        emit(
            session,
            EventType.member_added,
            now=now,
            conversation_id=conv.id,
            user_id=user.id,
            data={"member": _member_payload(user)},
            extras={user.id: {"data": {"conversation": seen}}},
        )
    for user_id in sorted(current.keys() - expected):
        member = current[user_id]
        conv.members.remove(member)
        session.delete(member)
        session.flush()
        totals = shift_totals(session, {user_id: change(member.unread_count, 0)})
        emit(
            session,
            EventType.member_removed,
            now=now,
            conversation_id=conv.id,
            user_id=user_id,
            data={"member": _member_payload(users[user_id])},
            extras={user_id: unread_extra(0, totals[user_id])},
        )
    session.flush()


def _member_payload(user: User) -> dict[str, Any]:
    return MemberOut(
        id=user.ext_id,
        name=user.name,
        kind="staff" if user.is_staff else "candidate",
        organization=user.organization.ext_id if user.organization else None,
    ).model_dump(mode="json")


def sync_conversations(session: Session, convs: Iterable[Conversation], *, now: datetime) -> None:
    for conv in convs:
        sync_members(session, conv, now=now)


def do_end_conversation(
    session: Session, *, actor: User, conv: Conversation, now: datetime
) -> None:
    """End it: the candidate can no longer post until a staff member writes again."""
    if conv.status == Status.ended:
        return
    conv.status = Status.ended
    conv.ended_at = now
    conv.ended_by_id = actor.id
    # The line in the history ("… ended the conversation") travels in the event, so a page
    # that shows the thread draws it without asking.
    line = record_activity(
        session,
        conversation_id=conv.id,
        kind=ActivityKind.ended,
        actor=actor,
        after_message_id=conv.last_message_id,
        now=now,
    )
    emit(
        session,
        EventType.conversation_updated,
        now=now,
        conversation_id=conv.id,
        data={
            "status": Status.ended,
            "ended_at": json_time(now),
            "ended_by": actor.ext_id,
            "activity": line,
        },
    )
    webhook_events.conversation_ended(session, conv, actor, now)


def emit_read(
    session: Session,
    conv: Conversation,
    member: Member,
    now: datetime,
    totals: Totals | None = None,
) -> None:
    """The member's conversation.read event; ``totals``: their badge, when the caller has it."""
    if totals is None:
        extras = unread_extras(session, conv.id, [member.user_id])
        emit_all(session, [_read(conv, member, extras)], now=now)
    else:
        emit_all(session, [read_event(conv, member, totals)], now=now)


def read_event(conv: Conversation, member: Member, totals: Totals) -> NewEvent:
    """The member's conversation.read event, with their badge ``totals`` (for a caller writing
    it with others, ``emit_all``)."""
    return _read(conv, member, {member.user_id: unread_extra(member.unread_count, totals)})


def _read(conv: Conversation, member: Member, extras: dict[int, dict[str, Any]]) -> NewEvent:
    return NewEvent(
        EventType.conversation_read,
        conversation_id=conv.id,
        user_id=member.user_id,
        data={
            "last_read_message_id": member.last_read_message_id,
            "unread_count": member.unread_count,
        },
        extras=extras,
    )


def do_mark_read(
    session: Session,
    *,
    member: Member,
    conv: Conversation,
    up_to: int | None,
    now: datetime,
) -> None:
    """Move the read marker forward to ``up_to`` (default: the latest message); never back."""
    if up_to is None:
        target = conv.last_message_id or 0
    else:
        in_conv = session.scalar(
            select(exists().where(Message.id == up_to, Message.conversation_id == conv.id))
        )
        if not in_conv:
            raise Invalid({"up_to": "is not a message of this conversation"})
        target = up_to
    if target <= member.last_read_message_id:
        return
    member.last_read_message_id = target
    unread = count_unread(session, conv.id, member.user_id, target)
    totals = shift_totals(session, {member.user_id: change(member.unread_count, unread)})
    member.unread_count = unread
    emit_read(session, conv, member, now, totals[member.user_id])

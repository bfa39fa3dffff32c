"""Releasing what quiet hours held back (a periodic sweep, every poll interval).

A person with ``notify_held_until`` set is released once that time has come: the end of their
window, or now when they remove or change their quiet hours so that now is outside them (the
preferences action moves the time: jobchat.directory.actions). Only holds that are due are
read: a night of thousands held costs one indexed look-up a poll and no write transaction.
Then each conversation with a held push gets one push (of its newest held message, if it is
still unread and not deleted), and texts that waited become due now (the text job checks
again what is still to tell, and when it may).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from jobchat.conversations.models import Member
from jobchat.directory.models import User
from jobchat.messages.models import HiddenMessage, Message
from jobchat.notifications.ladder import quiet_until
from jobchat.push.queries import subscription_ids_by_user
from jobchat.push.queue import enqueue_push


def any_held(session: Session, now: datetime) -> bool:
    """Whether anyone's hold is due (the common answer, no, from a partial index)."""
    found = session.scalar(
        select(User.id)
        .where(User.notify_held_until.is_not(None), User.notify_held_until <= now)
        .limit(1)
    )
    return found is not None


def do_release_held(session: Session, *, now: datetime) -> int:
    """Release everyone whose hold is due; returns how many pushes were queued."""
    queued = 0
    due = session.execute(
        select(User.id, User.notify_held_until)
        .where(User.notify_held_until.is_not(None), User.notify_held_until <= now)
        .order_by(User.id)
    ).all()
    for user_id, held_until in due:
        user = session.get_one(User, user_id)
        until = quiet_until(user, now)
        if until is not None:
            # Due but in quiet hours again (a window that starts as the last one ends, or a
            # time zone changed by the directory sync): hold on until this window's end.
            session.execute(
                update(User)
                .where(User.id == user_id, User.notify_held_until == held_until)
                .values(notify_held_until=until)
                .execution_options(synchronize_session=False)
            )
            continue
        # Claimed by clearing it where it is still what was read: of two workers sweeping at
        # once, only one releases (the other's UPDATE finds it changed and matches nothing).
        claimed = session.execute(
            update(User)
            .where(User.id == user_id, User.notify_held_until == held_until)
            .values(notify_held_until=None)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            continue
        session.refresh(user)
        queued += _release(session, user, now)
    return queued


def _release(session: Session, user: User, now: datetime) -> int:
    members = list(
        session.scalars(
            select(Member)
            .where(Member.user_id == user.id, Member.push_held_id.is_not(None))
            .order_by(Member.conversation_id)
        )
    )
    queued = 0
    for member in members:
        message_id = member.push_held_id
        assert message_id is not None
        # Cleared only if still the one read: a ladder job holding a newer one meanwhile wins.
        session.execute(
            update(Member)
            .where(
                Member.conversation_id == member.conversation_id,
                Member.user_id == user.id,
                Member.push_held_id == message_id,
            )
            .values(push_held_id=None)
            .execution_options(synchronize_session=False)
        )
        message = _still_news(session, member, message_id)
        if message is None or not user.push_notifications or not user.is_active:
            continue
        devices = subscription_ids_by_user(session, [user.id], before=message.created_at, now=now)
        for subscription_id in devices.get(user.id, []):
            enqueue_push(
                session,
                user_id=user.id,
                subscription_id=subscription_id,
                message_id=message_id,
                now=now,
            )
            queued += 1
    # Texts that waited for the morning may go now.
    session.execute(
        update(Member)
        .where(Member.user_id == user.id, Member.sms_due_at > now)
        .values(sms_due_at=now)
        .execution_options(synchronize_session=False)
    )
    return queued


def _still_news(session: Session, member: Member, message_id: int) -> Message | None:
    """The held message, if it is still unread, not deleted and not hidden by the member."""
    if member.last_read_message_id >= message_id:
        return None
    message = session.get(Message, message_id)
    if message is None or message.is_deleted:
        return None
    hidden = session.scalar(
        select(
            exists().where(
                HiddenMessage.message_id == message_id, HiddenMessage.user_id == member.user_id
            )
        )
    )
    return None if hidden else message

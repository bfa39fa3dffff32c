"""A user's send or delete, whichever way it came in (the API, or a page's form): the access
checks in their order, then the action. The routes only parse and render around these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.context import ContextRefs
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.db.undo import undo_on_rollback
from jobchat.directory.models import User
from jobchat.messages.actions import (
    Limits,
    Outgoing,
    do_delete_message,
    do_send_message,
    do_start_with_message,
)
from jobchat.messages.models import Message
from jobchat.ratelimit import RateLimiter


def send_as(
    session: Session,
    user: User,
    conversation_id: int,
    out: Outgoing,
    *,
    limiter: RateLimiter,
    limits: Limits,
    now: datetime,
    accessed: tuple[Conversation, Member] | None = None,
) -> tuple[Message, bool]:
    """Send into a conversation the user is in: (the message, whether it was a replay).

    ``accessed``: what ``access.access_conversation`` answered for this user and conversation
    earlier in the same transaction (the API's post_as asks it first), so that the send does
    not load them again."""
    if accessed is None:
        accessed = access.access_conversation(session, user, conversation_id)
    conv, member = accessed

    def admit() -> None:
        # Checked by the action after an idempotent replay is ruled out: a retried send that
        # was stored already answers with it, even into a conversation ended since.
        access.check_post(user, conv)
        undo_on_rollback(session, limiter.take(user.id))

    return do_send_message(
        session,
        actor=user,
        conv=conv,
        member=member,
        out=out,
        limits=limits,
        now=now,
        admit=admit,
    )


def start_as(
    session: Session,
    user: User,
    kind: Kind,
    refs: ContextRefs,
    out: Outgoing,
    *,
    limiter: RateLimiter,
    limits: Limits,
    now: datetime,
) -> tuple[Conversation, Message, bool]:
    """Open a conversation with its first message (the pages' "Start chat"): the conversation,
    the message, and whether it was a replay of an earlier attempt with the same key."""
    context, existing = access.access_start(session, user, kind, refs)

    def admit(conv: Conversation | None) -> None:
        if conv is not None:
            access.check_post(user, conv)
        undo_on_rollback(session, limiter.take(user.id))

    return do_start_with_message(
        session,
        actor=user,
        context=context,
        existing=existing,
        out=out,
        limits=limits,
        now=now,
        admit=admit,
    )


def delete_as(
    session: Session, user: User, message_id: int, *, for_everyone: bool, now: datetime
) -> Conversation:
    """Delete for the user, or for everyone (the author only): the conversation it was in."""
    message, conv, member = access.access_message(session, user, message_id)
    if for_everyone:
        access.check_delete_for_everyone(user, message)
    do_delete_message(
        session,
        actor=user,
        message=message,
        conv=conv,
        member=member,
        for_everyone=for_everyone,
        now=now,
    )
    return conv

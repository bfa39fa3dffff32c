"""The message a notification points at (``/conversations/{id}?message={id}``, the url of a
push): shown and highlighted when it is still there, or a plain word that it was deleted,
rather than a thread that silently lacks it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.messages.models import HiddenMessage, Message


@dataclass(frozen=True)
class Notified:
    message_id: int
    deleted: bool  # for everyone, or "for me" by this viewer
    shown: bool  # among the messages the page draws (so the page can scroll to it)


def notified_message(
    session: Session, me: User, conv_id: int, message_id: int | None, drawn: Sequence[Message]
) -> Notified | None:
    """None when there is nothing to say: no ``message``, or an id that is not a message of
    this conversation (a mistyped or foreign id tells nothing about other conversations)."""
    if message_id is None:
        return None
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conv_id:
        return None
    hidden = session.scalar(
        select(HiddenMessage.message_id).where(
            HiddenMessage.message_id == message_id, HiddenMessage.user_id == me.id
        )
    )
    deleted = message.is_deleted or hidden is not None
    shown = not deleted and any(m.id == message_id for m in drawn)
    return Notified(message_id, deleted=deleted, shown=shown)

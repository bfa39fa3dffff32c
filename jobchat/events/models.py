"""Event rows, written in the same transaction as the change they describe."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime


class EventType(enum.StrEnum):
    message_created = "message.created"
    message_deleted = "message.deleted"
    conversation_read = "conversation.read"
    conversation_updated = "conversation.updated"
    member_added = "member.added"
    member_removed = "member.removed"
    # Not about a conversation, never sent to a client: a person's credential was revoked
    # (data {"credential": id}) or all of them ended (data {"all": true}, deactivation). Every
    # server process's hub reads it, forgets the person's cached tokens and closes the sockets.
    access_revoked = "access.revoked"


class EventColumns:
    """What an event is, in ``events`` and in ``event_queue`` alike (the sequencer moves rows
    from one to the other column for column)."""

    type: Mapped[str] = mapped_column(String(40), sort_order=1)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id"), sort_order=1
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), sort_order=1)
    # The message a message event is about, so that deleting it for everyone can blank the
    # copy of its content the event holds.
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id"), index=True, sort_order=1
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, sort_order=1)
    extras: Mapped[dict[str, Any] | None] = mapped_column(JSON, sort_order=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, sort_order=1)


class Event(EventColumns, Base):
    """``id`` increases in commit order (see ``Database.write``): a client resumes after it.

    ``user_id`` names the one user an event concerns (the reader of a ``conversation.read``, the
    member added or removed). ``data`` is what every recipient gets; ``extras`` holds, per user
    id, what only that user gets: their unread counts after the change, and the conversation as
    they see it when they have just been added. Who receives an event is decided when it is
    delivered, by ``access.may_receive``.
    """

    __tablename__ = "events"
    __table_args__ = (Index(None, "conversation_id", "id"), Index(None, "user_id", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)


class QueuedEvent(EventColumns, Base):
    """An event written on PostgreSQL, waiting for its number (``jobchat.events.sequencer``).

    Senders into different conversations write side by side there, so they commit in any order;
    an ``events.id`` handed out at insert would become visible out of order. Each writer queues
    its events here instead (``seq`` only orders the queue), and right after its commit one
    sequencer at a time moves every queued row into ``events``, numbering them then. The columns
    and foreign keys are those of ``events`` (``EventColumns``); SQLite, one writer at a time,
    never uses it.
    """

    __tablename__ = "event_queue"

    # No index but on message_id (EventColumns): rows stay milliseconds, so the queue is all but
    # empty, and every index is one more write per event. Deleting messages (retention) checks
    # that foreign key once per message, and a dead row left by the churn costs until vacuum.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True)


class EventHorizon(Base):
    """One row: the highest event id retention has deleted. A client that asks to resume from
    below it has missed events that are gone, and must reload instead."""

    __tablename__ = "event_horizon"

    id: Mapped[int] = mapped_column(primary_key=True)
    pruned_through: Mapped[int] = mapped_column(BigInteger, default=0)

"""Where a new socket joins the stream: one consistent read of the user's conversations, the
newest event id, and, when resuming, the events they missed."""

from __future__ import annotations

from dataclasses import dataclass

from jobchat.access import may_receive
from jobchat.conversations.queries import conversation_ids_of
from jobchat.db.engine import Database
from jobchat.events.models import EventType
from jobchat.events.queries import (
    EventRecord,
    EventRow,
    conversation_events,
    latest_event_id,
    own_member_events,
    pruned_through,
)
from jobchat.realtime.frames import StreamEvent


@dataclass(frozen=True)
class Start:
    head: int
    """The newest event id when the snapshot was taken: the stream goes on after it."""
    conversations: set[int]
    """The user's conversations as of ``head``."""
    backlog: list[StreamEvent]
    """What a resuming client missed, in order."""


class ResyncNeeded(Exception):
    """The client's ``after`` cannot be resumed from: it must reload and connect afresh."""


def stream_event(row: EventRow | EventRecord) -> StreamEvent:
    return StreamEvent(
        id=row.id,
        type=row.type,
        conversation_id=row.conversation_id,
        user_id=row.user_id,
        data=row.data,
        extras=row.extras,
    )


def follow(event: StreamEvent, viewer_id: int, conversations: set[int]) -> bool:
    """Apply the event's membership change for the viewer to ``conversations``, and say whether
    the viewer receives it. A member added receives their member.added and everything after;
    a member removed receives their member.removed and nothing after."""
    conv = event.conversation_id
    if conv is None:
        return False
    mine = event.user_id == viewer_id
    if mine and event.type == EventType.member_added:
        conversations.add(conv)
    receives = conv in conversations and may_receive(event.type, event.user_id, viewer_id)
    if mine and event.type == EventType.member_removed:
        conversations.discard(conv)
    return receives


def start_stream(db: Database, user_id: int, after: int | None, *, max_backlog: int) -> Start:
    """Read where the user's stream starts; raises ResyncNeeded when ``after`` is unusable.

    The backlog is exact: membership is wound back to what it was at ``after`` (undoing the
    user's own member events since), then replayed forward with the events, so the client gets
    what it would have got had it stayed connected.
    """
    with db.snapshot() as session:
        head = latest_event_id(session)
        conversations = conversation_ids_of(session, user_id)
        if after is None or after == head:
            return Start(head, conversations, [])
        if after > head or after < pruned_through(session):
            raise ResyncNeeded
        own = own_member_events(session, user_id, after, head)
        member_then = set(conversations)
        for _, type_, conv in reversed(own):
            if type_ == EventType.member_added:
                member_then.discard(conv)
            else:
                member_then.add(conv)
        touched = conversations | {conv for _, _, conv in own}
        rows = conversation_events(session, touched, after, head, limit=max_backlog + 1)
    if len(rows) > max_backlog:
        raise ResyncNeeded
    backlog = []
    for row in rows:
        event = stream_event(row)
        if follow(event, user_id, member_then):
            backlog.append(event)
    return Start(head, conversations, backlog)

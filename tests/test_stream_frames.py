"""A stored event's frame as each recipient gets it (jobchat.realtime.frames): the shared part
rendered once, each recipient's unread counts spliced on, candidates never shown deliveries; the
text is compact JSON with characters outside ASCII as themselves."""

from __future__ import annotations

import json
from typing import Any

from jobchat.events.models import EventType
from jobchat.realtime.frames import StreamEvent, Viewer

_MESSAGE = {
    "id": 7,
    "conversation": 3,
    "author": {"id": "émile", "name": "Émile Zoë 🚀", "kind": "staff"},
    "body": 'Line one\nline two \u2028 «quoted» "and" back\\slash </script>',
    "subject": "Entretien",
    "channel": "email",
    "created_at": "2026-12-07T06:35:10.286845Z",
    "deleted": False,
    "deliveries": [{"recipient": "cand", "channel": "email", "status": "queued"}],
    "attachments": [],
}
_STAFF = Viewer(user_id=1, ext_id="team", name="Team", is_candidate=False)
_CANDIDATE = Viewer(user_id=2, ext_id="cand", name="Cand", is_candidate=True)
_LURKER = Viewer(user_id=3, ext_id="quiet", name="Quiet", is_candidate=False)


def _plain(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_each_recipient_s_frame_is_its_whole_frame_as_compact_json() -> None:
    unread = {
        "1": {"unread": {"conversation": 2, "conversations": 91, "messages": 94}},
        "2": {"unread": {"conversation": 1, "conversations": 1, "messages": 1}},
    }
    event = StreamEvent(7, EventType.message_created, 3, None, _MESSAGE, unread)
    head = {"id": 7, "type": "message.created", "conversation": 3}
    staff = {**head, "data": _MESSAGE, "unread": unread["1"]["unread"]}
    candidate = {
        **head,
        "data": {**_MESSAGE, "deliveries": None},
        "unread": unread["2"]["unread"],
    }
    assert event.frame_for(_STAFF) == _plain(staff)
    assert event.frame_for(_CANDIDATE) == _plain(candidate)
    # No counts of their own: the shared frame as it is.
    assert event.frame_for(_LURKER) == _plain({**head, "data": _MESSAGE})
    assert json.loads(event.frame_for(_STAFF)) == staff
    assert "Émile Zoë 🚀" in event.frame_for(_STAFF)


def test_data_of_a_recipient_s_own_is_merged_into_theirs_alone() -> None:
    extras = {"1": {"data": {"mine": True}, "unread": {"conversation": 0}}}
    event = StreamEvent(8, EventType.conversation_updated, 3, None, {"status": "open"}, extras)
    mine = {
        "id": 8,
        "type": "conversation.updated",
        "conversation": 3,
        "data": {"status": "open", "mine": True},
        "unread": {"conversation": 0},
    }
    assert event.frame_for(_STAFF) == _plain(mine)
    assert json.loads(event.frame_for(_LURKER))["data"] == {"status": "open"}

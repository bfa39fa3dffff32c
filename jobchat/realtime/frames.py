"""What travels over the socket: stored events as each recipient sees them, and ephemeral frames.

Every frame is ``{"id", "type", "conversation", "data"}``; a stored event's frame may add
``"unread"`` (the recipient's counts after it). Ephemeral frames (typing, presence, heartbeats)
have ``"id": null``: they are not part of the numbered stream and are never replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobchat.db import json_text
from jobchat.events.models import EventType
from jobchat.events.queries import EventRecord


def dumps(value: Any) -> str:
    """Compact JSON, characters outside ASCII as themselves: orjson's (jobchat.db.json_text),
    0.2 us for a recipient's unread counts where the standard library's encoder, made anew for
    these options each call, took 2.8; a frame is made for every socket an event reaches."""
    return json_text.dumps(value)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user at the other end of a socket, as frames about them name them."""

    user_id: int
    ext_id: str
    name: str
    is_candidate: bool
    # The token or session the socket was opened with: revoking it closes the socket.
    credential_id: int | None = None

    def public(self) -> dict[str, str]:
        return {"id": self.ext_id, "name": self.name, "kind": self.kind}

    @property
    def kind(self) -> str:
        return "candidate" if self.is_candidate else "staff"


@dataclass(slots=True)
class StreamEvent(EventRecord):
    """One stored event, with its frames rendered once and shared by every recipient."""

    _frames: dict[bool, str] = field(default_factory=dict, repr=False)

    def frame_for(self, viewer: Viewer) -> str:
        extra = self.extras.get(str(viewer.user_id)) if self.extras else None
        if extra is not None and "data" in extra:
            return dumps(self._frame(viewer.is_candidate, extra))  # rare: data of their own
        frame = self._frames.get(viewer.is_candidate)
        if frame is None:
            frame = dumps(self._frame(viewer.is_candidate, None))
            self._frames[viewer.is_candidate] = frame
        if extra is None or "unread" not in extra:
            return frame
        # Recipients differ only in their counts, which come last: the shared frame is
        # rendered once per event and each recipient's counts spliced onto its end (the same
        # text as rendering their whole frame).
        return f'{frame[:-1]},"unread":{dumps(extra["unread"])}}}'

    def _frame(self, for_candidate: bool, extra: dict[str, Any] | None) -> dict[str, Any]:
        data = self.data
        if extra is not None and "data" in extra:
            data = {**data, **extra["data"]}
        if for_candidate:
            data = _without_deliveries(self.type, data)
        frame: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "conversation": self.conversation_id,
            "data": data,
        }
        if extra is not None and "unread" in extra:
            frame["unread"] = extra["unread"]
        return frame


def _without_deliveries(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Candidates do not see how staff messages were delivered (nor does the REST API show it)."""
    if type_ == EventType.message_created:
        return {**data, "deliveries": None} if data.get("deliveries") is not None else data
    if type_ == EventType.message_deleted:
        return {k: _strip(v) if k in ("message", "last_message") else v for k, v in data.items()}
    return data


def _strip(message: Any) -> Any:
    if isinstance(message, dict) and message.get("deliveries") is not None:
        return {**message, "deliveries": None}
    return message


def ephemeral(type_: str, conversation: int | None, data: dict[str, Any]) -> str:
    return dumps({"id": None, "type": type_, "conversation": conversation, "data": data})


def error_frame(code: str, message: str) -> str:
    return ephemeral("error", None, {"error": {"code": code, "message": message}})

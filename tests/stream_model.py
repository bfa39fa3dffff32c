"""A client's model of what one user sees, kept current by the event stream.

The contract the stream tests check (in the manner of Zulip's event tests): take a user's
snapshot over REST, apply the stored frames that user received over ``/api/v1/events``, and the
result equals a fresh read.

- ``Snapshot``: the badge, every conversation of the inbox (by id) and each one's whole history.
- ``apply(snapshot, frame, me)``: pure, no HTTP; what a real client would do with one frame.
- ``read_snapshot(user)``: a fresh read over REST, following every cursor.
- ``differences(expected, actual)``: what differs, once times are parsed and members sorted.
- ``Stream``: one socket, with ``connect`` and ``drain`` that never wait for a frame that may not
  come.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from jobchat.events.queries import latest_event_id
from tests.support import As

JSON = dict[str, Any]


class ContractViolation(AssertionError):
    """A frame that no correct stream would send this user (e.g. about a conversation they are
    not in)."""


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Me:
    """Who the model belongs to, as frames name people: external id and kind."""

    id: str
    kind: str  # "staff" or "candidate"

    def is_(self, person: JSON | None) -> bool:
        return person is not None and person.get("id") == self.id and person["kind"] == self.kind


@dataclass
class Snapshot:
    badge: JSON
    """``{"conversations", "messages"}`` as ``GET /api/v1/unread`` shows it."""
    conversations: dict[int, JSON]
    """Every conversation of the inbox, as the inbox shows it, by id."""
    messages: dict[int, list[JSON] | None] = field(default_factory=dict)
    """Each conversation's whole history, oldest first; None: not loaded yet (a conversation
    joined over the stream: member.added carries no history)."""

    def unloaded(self) -> list[int]:
        return sorted(cid for cid, history in self.messages.items() if history is None)


def _time(raw: str) -> datetime:
    """A time as the API and the stream write it: ISO 8601 in UTC, with "Z"."""
    at = datetime.fromisoformat(raw)
    if not raw.endswith("Z") or at.utcoffset() != timedelta(0):
        raise ContractViolation(f"time {raw!r} is not ISO 8601 in UTC with Z")
    return at


def preview(message: JSON | None) -> JSON | None:
    """A message as the inbox shows it as a conversation's last message.

    The inbox renders previews without delivery state (``deliveries`` is null even for staff),
    while ``message.created`` and tombstones carry it for staff, as the history does.
    """
    if message is None:
        return None
    return {**message, "deliveries": None}


def apply(snapshot: Snapshot, frame: JSON, me: Me) -> Snapshot:
    """The snapshot after one frame; ``snapshot`` is left as it was.

    Ephemeral frames (``id`` null) change nothing. A stored frame about a conversation that is
    not in the snapshot (other than the user's own member.added) raises ContractViolation: the
    stream sends a user only the events of the conversations they are in.
    """
    if frame.get("id") is None:
        return snapshot
    new = copy.deepcopy(snapshot)
    _apply(new, frame, me)
    return new


def _apply(s: Snapshot, frame: JSON, me: Me) -> None:
    kind: str = frame["type"]
    conv_id: int = frame["conversation"]
    data: JSON = frame["data"]
    if kind == "member.added" and me.is_(data["member"]):
        conversation = data.get("conversation")
        if not isinstance(conversation, dict) or conversation.get("id") != conv_id:
            raise ContractViolation(f"my member.added {frame['id']} has no conversation {conv_id}")
        s.conversations[conv_id] = copy.deepcopy(conversation)
        if conv_id not in s.messages:
            s.messages[conv_id] = None  # its history is read with REST, once
        _apply_unread(s, frame)
        return
    conv = s.conversations.get(conv_id)
    if conv is None:
        raise ContractViolation(
            f"{kind} {frame['id']} is about conversation {conv_id}, which {me.id} is not in: "
            f"{frame}"
        )
    history = s.messages.get(conv_id)
    if kind == "message.created":
        if history is not None and all(m["id"] != data["id"] for m in history):
            history.append(copy.deepcopy(data))
            history.sort(key=lambda m: int(m["id"]))
        last = conv.get("last_message")
        if last is None or data["id"] >= last["id"]:
            conv["last_message"] = preview(data)
        if _time(data["created_at"]) > _time(conv["updated_at"]):
            conv["updated_at"] = data["created_at"]
        if me.is_(data["author"]):
            conv["last_read_message_id"] = max(conv["last_read_message_id"], data["id"])
    elif kind == "message.deleted" and data["for"] == "everyone":
        tombstone = data["message"]
        if tombstone["id"] != data["id"] or not tombstone["deleted"] or tombstone["body"]:
            raise ContractViolation(f"message.deleted {frame['id']}: not a tombstone: {data}")
        if history is not None:
            s.messages[conv_id] = [
                copy.deepcopy(tombstone) if m["id"] == data["id"] else m for m in history
            ]
        last = conv.get("last_message")
        if last is not None and last["id"] == data["id"]:
            conv["last_message"] = preview(tombstone)
    elif kind == "message.deleted" and data["for"] == "me":
        if history is not None:
            s.messages[conv_id] = [m for m in history if m["id"] != data["id"]]
        conv["last_message"] = preview(data["last_message"])
    elif kind == "conversation.read":
        conv["last_read_message_id"] = data["last_read_message_id"]
        conv["unread_count"] = data["unread_count"]
    elif kind == "conversation.updated":
        conv["status"] = data["status"]
        conv["ended_at"] = data.get("ended_at") if data["status"] == "ended" else None
    elif kind == "member.added":
        member = data["member"]
        conv["members"] = [
            m for m in conv["members"] if (m["id"], m["kind"]) != (member["id"], member["kind"])
        ] + [copy.deepcopy(member)]
    elif kind == "member.removed":
        member = data["member"]
        if me.is_(member):
            del s.conversations[conv_id]
            s.messages.pop(conv_id, None)
        else:
            conv["members"] = [
                m for m in conv["members"] if (m["id"], m["kind"]) != (member["id"], member["kind"])
            ]
    else:
        raise ContractViolation(f"unknown stored frame type {kind!r}: {frame}")
    _apply_unread(s, frame)


def _apply_unread(s: Snapshot, frame: JSON) -> None:
    unread = frame.get("unread")
    if unread is None:
        return
    conv = s.conversations.get(frame["conversation"])
    if conv is not None:
        conv["unread_count"] = unread["conversation"]
    s.badge = {"conversations": unread["conversations"], "messages": unread["messages"]}


def apply_all(snapshot: Snapshot, frames: list[JSON], me: Me) -> Snapshot:
    for frame in frames:
        snapshot = apply(snapshot, frame, me)
    return snapshot


# --- fresh reads ---------------------------------------------------------------------------------


def _ok(response: Any) -> JSON:
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


def read_history(user: As, conv_id: int, *, page: int = 200) -> list[JSON]:
    """The whole history, oldest first, paging back with ``before``."""
    pages: list[list[JSON]] = []
    before: int | None = None
    while True:
        params: JSON = {"limit": page}
        if before is not None:
            params["before"] = before
        body = _ok(user.messages(conv_id, **params))
        pages.append(body["items"])
        before = body["next_cursor"]
        if before is None:
            break
    return [m for items in reversed(pages) for m in items]


def read_snapshot(user: As, *, page: int = 200, history_page: int = 200) -> Snapshot:
    """What ``user`` sees now, over REST, following every cursor."""
    badge = _ok(user.get("/api/v1/unread"))
    conversations: dict[int, JSON] = {}
    cursor: str | None = None
    while True:
        params: JSON = {"limit": page}
        if cursor is not None:
            params["cursor"] = cursor
        body = _ok(user.inbox(**params))
        for conv in body["items"]:
            assert conv["id"] not in conversations, f"conversation {conv['id']} on two pages"
            conversations[conv["id"]] = conv
        cursor = body["next_cursor"]
        if cursor is None:
            break
    messages: dict[int, list[JSON] | None] = {
        cid: read_history(user, cid, page=history_page) for cid in sorted(conversations)
    }
    return Snapshot(badge=badge, conversations=conversations, messages=messages)


def load_joined(snapshot: Snapshot, user: As) -> Snapshot:
    """Read the history of each conversation joined over the stream (the one fresh read a client
    needs: member.added carries no history)."""
    missing = snapshot.unloaded()
    if not missing:
        return snapshot
    new = copy.deepcopy(snapshot)
    for cid in missing:
        new.messages[cid] = read_history(user, cid)
    return new


# --- comparing -----------------------------------------------------------------------------------

_TIMES = ("created_at", "updated_at", "ended_at")


def _norm_message(m: JSON | None) -> JSON | None:
    if m is None:
        return None
    return {**m, "created_at": _time(m["created_at"])}


def _norm_conversation(c: JSON) -> JSON:
    out = dict(c)
    for key in _TIMES:
        if out.get(key) is not None:
            out[key] = _time(out[key])
    out["members"] = sorted(c["members"], key=lambda m: (m["kind"], m["id"]))
    out["last_message"] = _norm_message(c.get("last_message"))
    return out


def _diff(path: str, expected: Any, actual: Any, out: list[str]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(expected.keys() | actual.keys(), key=str):
            if key not in actual:
                out.append(f"{path}.{key}: missing (expected {expected[key]!r})")
            elif key not in expected:
                out.append(f"{path}.{key}: unexpected {actual[key]!r}")
            else:
                _diff(f"{path}.{key}", expected[key], actual[key], out)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _diff(f"{path}[{i}]", e, a, out)
    elif expected != actual:
        out.append(f"{path}: expected {expected!r}, got {actual!r}")


def differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    """How ``actual`` (a model) differs from ``expected`` (a fresh read)."""
    out: list[str] = []
    _diff("badge", expected.badge, actual.badge, out)
    _diff(
        "conversations",
        {cid: _norm_conversation(c) for cid, c in expected.conversations.items()},
        {cid: _norm_conversation(c) for cid, c in actual.conversations.items()},
        out,
    )
    if set(actual.messages) != set(actual.conversations):
        out.append(
            f"histories kept for {sorted(actual.messages)}, "
            f"conversations are {sorted(actual.conversations)}"
        )
    for cid in sorted(expected.conversations):
        fresh = expected.messages[cid]
        kept = actual.messages.get(cid)
        if kept is None:
            out.append(f"messages[{cid}]: not loaded")
            continue
        assert fresh is not None
        _diff(
            f"messages[{cid}]",
            [_norm_message(m) for m in fresh],
            [_norm_message(m) for m in kept],
            out,
        )
    return out


def assert_same(expected: Snapshot, actual: Snapshot, who: str) -> None:
    diffs = differences(expected, actual)
    assert not diffs, f"{who}: the model differs from a fresh read:\n  " + "\n  ".join(diffs)


# --- sockets -------------------------------------------------------------------------------------

DRAIN_SECONDS = 10.0
# The server closes a socket that sends more than 20 frames a second (4008); stay well under.
PINGS_PER_SECOND = 12


def bearer(user: As) -> str:
    return user.headers["Authorization"].removeprefix("Bearer ")


def head(client: TestClient) -> int:
    """The newest event id in the database."""
    with client.app.state.jobchat.db.read() as session:  # type: ignore[attr-defined]
        return latest_event_id(session)


def wait_for_hub(client: TestClient) -> int:
    """Wait until the hub has dispatched every event in the database; return that id.

    Frames are queued synchronously as the hub dispatches an event, so once it has caught up,
    every frame of every socket is queued (before anything the socket asks for next).
    """
    hub = client.app.state.hub  # type: ignore[attr-defined]
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        newest = head(client)
        if hub.position == newest:
            return newest
        assert time.monotonic() < deadline, (
            f"the hub is at event {hub.position}; the newest is {newest}"
        )
        time.sleep(0.002)


@dataclass
class Stream:
    """One connected socket."""

    ws: WebSocketTestSession
    ready: JSON
    backlog: list[JSON]
    """Stored frames received before ``ready`` (a resume's replay)."""
    last_id: int = 0
    """The newest stored frame id received."""
    _pings: deque[float] = field(default_factory=deque)

    def _pace(self) -> None:
        now = time.monotonic()
        while self._pings and now - self._pings[0] > 1.2:
            self._pings.popleft()
        if len(self._pings) >= PINGS_PER_SECOND:
            time.sleep(max(0.0, 1.2 - (now - self._pings[0])))
            self._pings.popleft()
        self._pings.append(time.monotonic())

    def take(self) -> list[JSON]:
        """Every frame queued for this socket now (the caller waited for the hub): ping, and
        read up to the pong. Stored frames must come in increasing id order."""
        self._pace()
        self.ws.send_json({"type": "ping"})
        frames: list[JSON] = []
        while True:
            frame: JSON = self.ws.receive_json()
            if frame["type"] == "pong" and frame["id"] is None:
                return frames
            if frame["id"] is not None:
                assert frame["id"] > self.last_id, (
                    f"frame {frame['id']} after {self.last_id}: a gap or a duplicate: {frame}"
                )
                self.last_id = frame["id"]
            frames.append(frame)


def drain(client: TestClient, stream: Stream) -> list[JSON]:
    """The frames ``stream`` received since it was last drained (ephemeral ones included)."""
    wait_for_hub(client)
    return stream.take()


def stored(frames: list[JSON]) -> list[JSON]:
    return [f for f in frames if f["id"] is not None]


def types(frames: list[JSON]) -> list[str]:
    return [f["type"] for f in stored(frames)]


@contextmanager
def connect(client: TestClient, user: As, after: int | None = None) -> Iterator[Stream]:
    """A socket for ``user``, read up to its ``ready`` frame (the backlog, if resuming, first)."""
    url = f"/api/v1/events?token={bearer(user)}"
    if after is not None:
        url += f"&after={after}"
    with client.websocket_connect(url) as ws:
        backlog: list[JSON] = []
        last = after or 0
        while True:
            frame: JSON = ws.receive_json()
            if frame["type"] == "ready" and frame["id"] is None:
                break
            assert frame["id"] is not None, f"an ephemeral frame before ready: {frame}"
            assert frame["id"] > last, f"replayed {frame['id']} after {last}: {frame}"
            last = frame["id"]
            backlog.append(frame)
        yield Stream(ws=ws, ready=frame, backlog=backlog, last_id=max(last, frame["data"]["head"]))

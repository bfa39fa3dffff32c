"""The stream's mechanics inside one process: bounded queues, retention, and the frames a
client sends (typing, presence, ping, nonsense)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Collection, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.events.queries import latest_event_id, pruned_through
from jobchat.realtime import codes
from jobchat.realtime.bus import RedisBus
from jobchat.realtime.frames import Viewer
from jobchat.realtime.hub import Hub
from jobchat.realtime.presence import LocalPresence, RedisPresence
from jobchat.realtime.subscription import Subscription
from tests.support import Api, World, besides_heartbeats, build_world, sent, start, user_id

Socket = Any  # starlette's WebSocketTestSession


def token(who: Any) -> str:
    header: str = who.headers["Authorization"]
    return header.removeprefix("Bearer ")


def hub_of(client: TestClient) -> Hub:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    return hub


def caught_up(client: TestClient, db: Database) -> None:
    """Wait until the hub has dispatched every stored event."""
    with db.read() as session:
        head = latest_event_id(session)
    hub = hub_of(client)
    deadline = time.monotonic() + 10
    while hub.position < head:
        assert time.monotonic() < deadline, "the hub did not catch up"
        time.sleep(0.002)


def frames_until_pong(client: TestClient, db: Database, ws: Socket) -> list[dict[str, Any]]:
    """The frames a socket received before the pong to a ping sent now, heartbeats left out
    (one is due whenever the socket's turn in the interval comes, on a slow machine inside a
    test)."""
    caught_up(client, db)
    ws.send_text(json.dumps({"type": "ping"}))
    out = []
    while (frame := json.loads(ws.receive_text()))["type"] != "pong":
        if frame["type"] != "heartbeat":
            out.append(frame)
    return out


def until_closed(ws: Socket) -> tuple[list[dict[str, Any]], int]:
    """The frames received until the server closed the socket, and its close code."""
    frames = []
    while True:
        try:
            frames.append(json.loads(ws.receive_text()))
        except WebSocketDisconnect as closed:
            return frames, closed.code


def connect(client: TestClient, who: Any, query: str = "") -> Any:
    return client.websocket_connect(f"/api/v1/events?token={token(who)}{query}")


# --- a slow socket ------------------------------------------------------------------------------


@pytest.fixture
def small_queues(database_url: str, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        api_key="test-integration-key",
        public_url="http://testserver",
        stream_queue_frames=5,
        _env_file=None,
    )
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        yield client


def test_a_full_queue_closes_that_socket_only(small_queues: TestClient, db: Database) -> None:
    """A socket that does not read is closed with 4000 once five frames wait; a socket of the
    same conversation that keeps reading gets every frame."""
    client = small_queues
    world = build_world(Api(client))
    conv = start(world["emp_team"], "application", application="app1")
    hub = hub_of(client)
    assert client.portal is not None
    portal = client.portal

    def subscribe(ext_id: str, is_candidate: bool) -> Subscription:
        viewer = Viewer(user_id(db, ext_id), ext_id, ext_id, is_candidate)
        sub: Subscription = portal.call(hub.subscribe, viewer, None)
        assert portal.call(sub.next_frame) is not None  # ready
        return sub

    caught_up(client, db)
    slow = subscribe("cand", True)
    fast = subscribe("emp_admin", False)
    received = []
    for n in range(8):
        sent(world["emp_team"].send(conv, f"message {n}"))
        caught_up(client, db)
        while (frame := json.loads(portal.call(fast.next_frame) or "null"))["id"] is None:
            pass  # presence: ephemeral
        received.append(frame)
    assert [f["data"]["body"] for f in received] == [f"message {n}" for n in range(8)]
    assert slow.closing is not None and slow.closing[0] == codes.BEHIND
    assert portal.call(slow.next_frame) is None
    assert fast.closing is None
    portal.call(hub.unsubscribe, slow)
    portal.call(hub.unsubscribe, fast)


def test_subscription_drops_its_queue_when_closed() -> None:
    sub = Subscription(Viewer(1, "u", "U", False), limit=2)
    sub.push("a")
    sub.push("b")
    sub.push("c")  # one too many
    assert sub.closing is not None and sub.closing[0] == codes.BEHIND
    assert sub.queued == 0
    sub.push("d")
    assert sub.queued == 0


# --- retention ----------------------------------------------------------------------------------


def test_old_events_are_pruned_and_a_resume_from_before_them_must_reload(
    client: TestClient, world: World, db: Database, clock: FrozenClock
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(conv, "old news"))
    with db.read() as session:
        old_head = latest_event_id(session)
    clock.advance(days=2)
    fresh = sent(world["emp_team"].send(conv, "fresh"))

    deleted = hub_of(client).prune(clock.now() - timedelta(days=1))

    with db.read() as session:
        assert pruned_through(session) == old_head
        assert latest_event_id(session) == old_head + 1
    assert deleted == old_head
    # From before the horizon: the events are gone, so the client must reload.
    with connect(client, world["cand"], "&after=1") as ws, pytest.raises(WebSocketDisconnect) as e:
        ws.receive_text()
    assert e.value.code == codes.RESYNC
    # From the horizon on, the stream resumes.
    with connect(client, world["cand"], f"&after={old_head}") as ws:
        replay = json.loads(ws.receive_text())
        assert (replay["type"], replay["data"]["id"]) == ("message.created", fresh["id"])
        assert json.loads(ws.receive_text())["type"] == "ready"
    # Nothing newer than the retention is touched.
    assert hub_of(client).prune(clock.now() - timedelta(days=1)) == 0


# --- what clients send --------------------------------------------------------------------------


def test_typing_reaches_the_other_members_only(
    client: TestClient, world: World, db: Database
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    with (
        connect(client, world["cand"]) as cand,
        connect(client, world["emp_team"]) as team,
        connect(client, world["emp_other"]) as outsider,
    ):
        for ws in (cand, team, outsider):
            assert json.loads(ws.receive_text())["type"] == "ready"
        cand.send_text(json.dumps({"type": "typing", "conversation": conv}))
        cand.send_text(json.dumps({"type": "typing", "conversation": conv}))  # throttled
        cand.send_text(json.dumps({"type": "typing", "conversation": conv, "typing": False}))
        assert [f for f in frames_until_pong(client, db, cand) if f["type"] == "typing"] == []
        typing = [f for f in frames_until_pong(client, db, team) if f["type"] == "typing"]
        assert [f["data"]["typing"] for f in typing] == [True, False]
        assert typing[0] == {
            "id": None,
            "type": "typing",
            "conversation": conv,
            "data": {
                "user": {"id": "cand", "name": "Carla Candidate", "kind": "candidate"},
                "typing": True,
            },
        }
        assert [f["type"] for f in frames_until_pong(client, db, outsider)] == []


def test_presence_answers_who_of_a_conversation_is_online(
    client: TestClient, world: World, db: Database
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    with connect(client, world["cand"]) as cand:
        assert json.loads(cand.receive_text())["type"] == "ready"
        with connect(client, world["emp_team"]) as team:
            assert json.loads(team.receive_text())["type"] == "ready"
            came = besides_heartbeats(cand)
            assert came["type"] == "presence"
            assert came["data"] == {
                "user": {"id": "emp_team", "name": "Tess Team", "kind": "staff"},
                "online": True,
            }
            cand.send_text(json.dumps({"type": "presence", "conversation": conv}))
            answer = besides_heartbeats(cand)
            assert answer == {
                "id": None,
                "type": "presence",
                "conversation": conv,
                "data": {"online": ["cand", "emp_team"]},
            }
        went = besides_heartbeats(cand)
        assert (went["type"], went["data"]["online"]) == ("presence", False)


class UnhearingPresence(LocalPresence):
    """A presence store that never hears of anyone coming online (their announcement is
    always still on its way)."""

    async def mark_online(self, user_ids: Collection[int]) -> None:
        await asyncio.sleep(3600)


def test_someone_with_a_socket_here_is_online_before_the_store_has_heard(
    client: TestClient, world: World
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    hub_of(client).presence = UnhearingPresence()
    with connect(client, world["cand"]) as cand:
        assert json.loads(cand.receive_text())["type"] == "ready"
        cand.send_text(json.dumps({"type": "presence", "conversation": conv}))
        answer = besides_heartbeats(cand)
        assert (answer["type"], answer["data"]) == ("presence", {"online": ["cand"]})


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_frame"),
        ("[1, 2]", "invalid_frame"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "typing"}', "not_found"),
        ('{"type": "typing", "conversation": "1"}', "not_found"),
        ('{"type": "typing", "conversation": 999999}', "not_found"),
        ('{"type": "presence", "conversation": true}', "not_found"),
    ],
)
def test_a_bad_client_frame_is_answered_with_an_error_frame(
    client: TestClient, world: World, frame: str, code: str
) -> None:
    with connect(client, world["cand"]) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(frame)
        answer = besides_heartbeats(ws)
        assert (answer["id"], answer["type"], answer["data"]["error"]["code"]) == (
            None,
            "error",
            code,
        )
        # The socket stays open.
        ws.send_text('{"type": "ping"}')
        assert besides_heartbeats(ws)["type"] == "pong"


def test_typing_into_someone_elses_conversation_is_not_found(
    client: TestClient, world: World
) -> None:
    conv = start(world["emp_team"], "agency", application="app1")
    with connect(client, world["cand"]) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(json.dumps({"type": "typing", "conversation": conv}))
        assert besides_heartbeats(ws)["data"]["error"]["code"] == "not_found"


def test_a_client_flooding_frames_is_closed(client: TestClient, world: World) -> None:
    with connect(client, world["cand"]) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        for _ in range(30):
            ws.send_text('{"type": "ping"}')
        frames, code = until_closed(ws)
        assert code == codes.TOO_MANY_FRAMES
        answers = [f for f in frames if f["type"] != "heartbeat"]
        assert {f["type"] for f in answers} <= {"pong"}
        assert len(answers) <= 20


# --- the handshake -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 401, "unauthorized"),
        ("?token=nope", 401, "unauthorized"),
        ("?token=test-integration-key", 403, "user_token_required"),
    ],
)
def test_the_handshake_refuses_bad_credentials(
    client: TestClient, world: World, query: str, status: int, code: str
) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as e,
        client.websocket_connect(f"/api/v1/events{query}"),
    ):
        pass
    assert e.value.status_code == status
    assert e.value.json()["error"]["code"] == code


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "99999999999999999999", "\u0661"])
def test_a_malformed_after_is_refused(client: TestClient, world: World, after: str) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as e,
        connect(client, world["cand"], f"&after={after}"),
    ):
        pass
    assert e.value.status_code == 422
    assert "after" in e.value.json()["error"]["fields"]


def test_the_bearer_header_works_too(client: TestClient, world: World) -> None:
    with client.websocket_connect("/api/v1/events", headers=world["cand"].headers) as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"


# --- Redis --------------------------------------------------------------------------------------


def test_a_thousand_sockets_arriving_at_once_are_all_marked_online_in_redis() -> None:
    """Presence updates queue for a Redis connection rather than fail (they did, with "too many
    connections", when a thousand sockets connected at once)."""
    url = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    prefix = f"jobchat-test-{uuid.uuid4().hex}"

    async def arrive_and_leave() -> tuple[int, int]:
        bus = RedisBus(url, prefix=prefix)
        await bus.start(lambda: None, lambda _message: None)
        presence = RedisPresence(bus.redis, bus.origin, prefix=prefix, ttl_seconds=60)
        try:
            await asyncio.gather(*(presence.mark_online([uid]) for uid in range(1000)))
            online = len(await presence.online(range(1000)))
            await asyncio.gather(*(presence.mark_offline(uid) for uid in range(1000)))
            return online, len(await presence.online(range(1000)))
        finally:
            await bus.stop()

    assert asyncio.run(arrive_and_leave()) == (1000, 0)

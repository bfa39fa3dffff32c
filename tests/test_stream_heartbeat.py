"""Heartbeats are spread over their interval: every socket gets one every
JOBCHAT_STREAM_HEARTBEAT_SECONDS, but the sockets take turns (a slot of them every 0.1 s) rather
than all waking and writing at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.realtime.hub import Hub
from tests.support import Api, build_world

INTERVAL = 0.4  # four slots of 0.1 s
SOCKETS = 8


@pytest.fixture
def beating(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(
        settings.model_copy(update={"stream_heartbeat_seconds": INTERVAL}), db=db, clock=clock
    )
    with TestClient(app) as client:
        yield client


def _slots(client: TestClient) -> list[int]:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    return [len(slot) for slot in hub._beats]


def test_every_socket_beats_and_the_sockets_take_turns(beating: TestClient) -> None:
    world = build_world(Api(beating))
    token = world["cand"].headers["Authorization"].removeprefix("Bearer ")
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(beating.websocket_connect(f"/api/v1/events?token={token}"))
            for _ in range(SOCKETS)
        ]
        for ws in sockets:
            assert json.loads(ws.receive_text())["type"] == "ready"
        # Each socket in a slot of its own turn: two per slot, none left out.
        assert sorted(_slots(beating)) == [SOCKETS // 4] * 4
        started = time.monotonic()
        for ws in sockets:
            for _ in range(3):  # three heartbeats each: one every INTERVAL
                frame = json.loads(ws.receive_text())
                assert frame["type"] == "heartbeat"
                assert frame["conversation"] is None
        # Three rounds of the interval (some slack for a busy machine), not three ticks.
        assert time.monotonic() - started < 3 * INTERVAL + 2.0
    deadline = time.monotonic() + 5
    while sum(_slots(beating)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _slots(beating) == [0, 0, 0, 0]  # a closed socket leaves its slot

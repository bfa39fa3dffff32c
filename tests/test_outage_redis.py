"""Redis goes away and comes back under two ``jobchat serve`` processes, spoken to through real
sockets (tests/test_stream_e2e.py's helpers).

While it is away: a presence question is answered from what the process knows (before, it got
no answer at all), a message reaches this process's sockets at once and the other process's
through its poll of the event table. Once Redis is back, with no restart: presence is whole
again and the bus carries typing (which only the bus carries) between the processes.

The shared Redis keeps running: these servers use a private ``redis-server`` on a free loopback
port, killed and restarted on the same port.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobchat.realtime.hub import TYPING_EVERY_SECONDS
from tests.support import eventually, free_port, stop
from tests.test_stream_e2e import (
    Backend,
    Cast,
    NoFrame,
    Server,
    Sockets,
    Stream,
    created,
    launch,
)

pytestmark = pytest.mark.slow


class PrivateRedis:
    """A ``redis-server`` of this test's own, which it may kill and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            eventually(lambda: self._answers(client), "redis-server answers")
        finally:
            client.close()

    def _answers(self, client: redis.Redis) -> bool | None:
        assert self.process is not None and self.process.poll() is None, "redis-server exited"
        try:
            return bool(client.ping()) or None
        except redis.RedisError:
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            stop(server.process)


def online(stream: Stream, conv: int) -> list[str]:
    """Ask who of the conversation is online; the answer's external ids."""
    stream.send({"type": "presence", "conversation": conv})
    frame = stream.take(
        lambda f: f["type"] == "presence" and f["conversation"] == conv, "a presence answer"
    )
    answer: list[str] = frame["data"]["online"]
    return answer


def test_sockets_are_served_through_a_redis_outage_and_recover_after_it(
    database_url: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    backend = Backend(database_url, private_redis.url, f"jobchat-outage-{uuid.uuid4().hex}")
    # Each process reads the event table every second unwoken. Presence entries are restated
    # every 40 s (a third of their lifetime): presence whole again sooner than that after
    # Redis restarts is the processes restating it as their bus reconnects.
    settings = {"stream_poll_seconds": "1", "presence_ttl_seconds": "120"}
    a = launch("A", backend, tmp_path, **settings)
    servers: list[Server] = [a]
    sockets = Sockets()
    try:
        a.wait_ready()  # A made the schema; B starts on it
        b = launch("B", backend, tmp_path, **settings)
        servers.append(b)
        b.wait_ready()
        cast = Cast(a)
        staff, cand = cast.user("emp_admin"), cast.user("cand")
        conv = staff.start("application", application=cast.ext("app1"))
        on_a, _, _ = sockets.follow(a, cand)
        on_b, _, _ = sockets.follow(b, staff)
        both = sorted([cast.ext("emp_admin"), cast.ext("cand")])
        eventually(lambda: online(on_a, conv) == both or None, "both online, seen from A")

        private_redis.kill()
        # Answered, from what A knows: its own socket's user.
        assert cast.ext("cand") in online(on_a, conv)
        during = staff.send(conv, "during the outage, through A")
        on_a.take(created(during["id"]), "A's own message on A, at once")
        on_b.take(created(during["id"]), "A's message on B, by B's poll")
        from_b = staff.on(b).send(conv, "during the outage, through B")
        on_a.take(created(from_b["id"]), "B's message on A, by A's poll")

        private_redis.start()  # empty: nothing of the presence kept before
        eventually(
            lambda: online(on_a, conv) == both or None,
            "presence whole again, seen from A",
            timeout=30,
            log=b.output,
        )
        # Typing goes only through the bus: seen on A, from B, the bus works both ends again.
        typing = False

        def typing_arrives() -> bool | None:
            nonlocal typing
            typing = not typing
            on_b.send({"type": "typing", "conversation": conv, "typing": typing})
            try:
                on_a.take(
                    lambda f: f["type"] == "typing" and f["conversation"] == conv,
                    "typing from B",
                    timeout=TYPING_EVERY_SECONDS,
                )
            except NoFrame:
                return None
            return True

        eventually(typing_arrives, "typing from B reaches A over Redis", timeout=30)
        after = staff.on(b).send(conv, "after the outage")
        on_a.take(created(after["id"]), "a message after the outage")
        bodies = [
            m["body"] for m in cand.ok("GET", f"/api/v1/conversations/{conv}/messages")["items"]
        ]
        assert bodies == [
            "during the outage, through A",
            "during the outage, through B",
            "after the outage",
        ]
        for server in servers:
            assert server.process.poll() is None, server.output()
            assert "Traceback" not in server.output(), server.output()[-4000:]
    finally:
        sockets.close_all()
        for server in servers:
            server.stop()

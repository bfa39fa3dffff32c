"""The Redis client rides out one stalled connection attempt instead of failing the command.

The stall is real: a loopback relay in front of the real Redis that holds the first connection
silent and passes the later ones through."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import pytest
import redis
from redis.exceptions import TimeoutError as RedisTimeout

from jobchat.realtime.redis_client import redis_client

REDIS_URL = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _need_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")


class StallingRelay:
    """Accepts connections on a free loopback port; the first ``stall`` of them get no answer,
    the rest are relayed to Redis byte for byte."""

    def __init__(self, stall: int) -> None:
        self.stall = stall
        self.accepted = 0
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        target = urlsplit(REDIS_URL)
        self._target = (target.hostname or "127.0.0.1", target.port or 6379)

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *_exc: object) -> None:
        for writer in self._held:
            writer.close()
        assert self._server is not None
        self._server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted <= self.stall:
            self._held.append(writer)  # read nothing, answer nothing
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_a_connection_that_stalls_once_is_tried_again() -> None:
    relay = StallingRelay(stall=1)

    async def run_with_relay() -> tuple[bool, int]:
        async with relay as url:
            # Long enough that the second attempt is not late on a loaded machine too.
            client = redis_client(url, connect_timeout=1.0, command_timeout=1.0)
            try:
                return await client.ping(), relay.accepted
            finally:
                await client.aclose()

    assert asyncio.run(run_with_relay()) == (True, 2)


def test_a_redis_that_never_answers_fails_within_its_retries() -> None:
    """Past its retries the client gives up (the callers' own loops go on from there): four
    attempts (the retry applies to the connection and to the command around it), not a wait
    without end."""
    relay = StallingRelay(stall=100)

    async def run() -> None:
        async with relay as url:
            client = redis_client(url, connect_timeout=0.2, command_timeout=0.2)
            try:
                await client.ping()
            finally:
                await client.aclose()

    with pytest.raises(RedisTimeout):
        asyncio.run(run())
    assert relay.accepted == 4

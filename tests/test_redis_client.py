"""The Redis client rides out one stalled connection attempt instead of failing the command.

The stall is real: the tests' loopback relay (tests/relay_support.py) in front of the real Redis
holds the first connections silent and passes the later ones through."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import redis
from redis.exceptions import TimeoutError as RedisTimeout

from jobchat.realtime.redis_client import redis_client
from tests.relay_support import Relay

REDIS_URL = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _need_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")


@contextmanager
def relayed() -> Iterator[tuple[Relay, str]]:
    """A relay in front of the test Redis, and the URL that reaches Redis through it."""
    target = urlsplit(REDIS_URL)
    relay = Relay(target.hostname or "127.0.0.1", target.port or 6379)
    try:
        yield relay, f"redis://127.0.0.1:{relay.port}{target.path or '/0'}"
    finally:
        relay.close()


def test_a_connection_that_stalls_once_is_tried_again() -> None:
    with relayed() as (relay, url):
        relay.stall(1)

        async def ping() -> bool:
            # Long enough that the second attempt is not late on a loaded machine too.
            client = redis_client(url, connect_timeout=1.0, command_timeout=1.0)
            try:
                return bool(await client.ping())
            finally:
                await client.aclose()

        assert asyncio.run(ping()) is True
        assert relay.accepted == 2


def test_a_redis_that_never_answers_fails_within_its_retries() -> None:
    """Past its retries the client gives up (the callers' own loops go on from there): four
    attempts (the retry applies to the connection and to the command around it), not a wait
    without end."""
    with relayed() as (relay, url):
        relay.stall(100)

        async def ping() -> None:
            client = redis_client(url, connect_timeout=0.2, command_timeout=0.2)
            try:
                await client.ping()
            finally:
                await client.aclose()

        with pytest.raises(RedisTimeout):
            asyncio.run(ping())
        assert relay.accepted == 4

"""Who has the app open, as a worker on its own (``jobchat worker``) sees it: through Redis,
when the servers share one; otherwise nobody, said once in the log."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets

import pytest

from jobchat.config import Settings
from jobchat.notifications.presence import NobodyOnline, worker_presence
from jobchat.realtime.presence import RedisPresence

REDIS_URL = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_without_redis_nobody_is_online_and_the_log_says_it_cannot_know(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobchat.notifications"):
        presence, redis = worker_presence(Settings(_env_file=None))
    assert redis is None and isinstance(presence, NobodyOnline)
    assert asyncio.run(presence.online([1, 2, 3])) == set()
    (record,) = caplog.records
    assert "cannot know who has the app open" in record.getMessage()


def test_with_redis_the_worker_sees_a_servers_sockets() -> None:
    prefix = f"ladder-test-{secrets.token_hex(4)}"
    settings = Settings(redis_url=REDIS_URL, redis_prefix=prefix, _env_file=None)

    async def check() -> None:
        presence, redis = worker_presence(settings)
        assert redis is not None and isinstance(presence, RedisPresence)
        # A server process with user 7's socket open, on the same Redis and prefix.
        server = RedisPresence(redis, "server-a", prefix=prefix, ttl_seconds=30)
        try:
            await server.mark_online([7])
            assert await presence.online([7, 8]) == {7}
            await server.mark_offline(7)
            assert await presence.online([7, 8]) == set()
        finally:
            await redis.delete(f"{prefix}:presence:7")
            await redis.aclose()

    asyncio.run(check())

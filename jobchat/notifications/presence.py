"""Who has the app open, as the worker sees it: the ladder never pushes to someone who does.

In the server process the worker asks the hub's own presence (jobchat.realtime.presence). A
worker on its own (``jobchat worker``) asks Redis when the deployment has it; without Redis it
cannot know, and says so once: everyone is taken to be away, so pushes go to every device.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import redis.asyncio as aioredis

from jobchat.config import Settings
from jobchat.realtime.presence import Presence, RedisPresence
from jobchat.realtime.redis_client import redis_client

log = logging.getLogger("jobchat.notifications")


class NobodyOnline:
    """A presence for a process that holds no sockets and has no Redis to ask."""

    def __init__(self) -> None:
        log.warning(
            "this worker cannot know who has the app open (no JOBCHAT_REDIS_URL): "
            "new messages are pushed even to people reading them in the app"
        )

    async def mark_online(self, user_ids: Collection[int]) -> None:
        return None

    async def mark_offline(self, user_id: int) -> None:
        return None

    async def online(self, user_ids: Collection[int]) -> set[int]:
        return set()


def worker_presence(settings: Settings) -> tuple[Presence, aioredis.Redis | None]:
    """The presence a worker outside the server asks, and the Redis client it made (to close),
    if any. The client connects on first use, on the worker's own event loop."""
    if not settings.redis_url:
        return NobodyOnline(), None
    redis = redis_client(settings.redis_url)
    presence = RedisPresence(
        redis,
        "worker",  # only read here: the origin names whose entries this process writes
        prefix=settings.redis_prefix,
        ttl_seconds=settings.presence_ttl_seconds,
    )
    return presence, redis

"""Who is online: a user with at least one socket open on any server process.

Each process counts its own sockets per user. With Redis, it also keeps, per user, a hash of
the processes that have that user online, each entry with an expiry it refreshes; a process
that dies without saying goodbye drops out when its entries expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import Protocol

import redis.asyncio as aioredis


class Presence(Protocol):
    async def mark_online(self, user_ids: Collection[int]) -> None:
        """(Re)state that this process has these users online."""

    async def mark_offline(self, user_id: int) -> None:
        """This process has no socket of the user any more."""

    async def online(self, user_ids: Collection[int]) -> set[int]:
        """Which of these users have a socket open on any process."""


class LocalPresence:
    """One process: the hub's own socket counts are the whole truth."""

    def __init__(self) -> None:
        self._online: set[int] = set()

    async def mark_online(self, user_ids: Collection[int]) -> None:
        self._online.update(user_ids)

    async def mark_offline(self, user_id: int) -> None:
        self._online.discard(user_id)

    async def online(self, user_ids: Collection[int]) -> set[int]:
        return self._online.intersection(user_ids)


class RedisPresence:
    def __init__(
        self, redis: aioredis.Redis, origin: str, *, prefix: str, ttl_seconds: float
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        # A thousand sockets may arrive at once: their updates queue here rather than each take
        # a connection from the client's pool (which refuses past 100).
        self._connections = asyncio.Semaphore(16)
        self._origin = origin
        self._ttl = ttl_seconds

    def _key(self, user_id: int) -> str:
        return f"{self._prefix}:presence:{user_id}"

    async def mark_online(self, user_ids: Collection[int]) -> None:
        until = time.time() + self._ttl
        async with self._connections, self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.hset(self._key(user_id), self._origin, until)
                pipe.expire(self._key(user_id), int(self._ttl * 2))
            await pipe.execute()

    async def mark_offline(self, user_id: int) -> None:
        async with self._connections:
            await self._redis.hdel(self._key(user_id), self._origin)

    async def online(self, user_ids: Collection[int]) -> set[int]:
        ids = list(user_ids)
        if not ids:
            return set()
        async with self._connections, self._redis.pipeline(transaction=False) as pipe:
            for user_id in ids:
                pipe.hvals(self._key(user_id))
            results = await pipe.execute()
        now = time.time()
        return {
            uid
            for uid, until in zip(ids, results, strict=True)
            if any(float(t) > now for t in until)
        }

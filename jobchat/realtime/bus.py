"""How server processes tell each other about new events, and pass on ephemeral signals.

The bus carries no events: those are in the database. It carries a nudge ("something new was
committed, read the table") and ephemeral messages (typing, presence), which are never stored.
Without Redis there is one process to reach, and ``LocalBus`` just calls back; with Redis,
``RedisBus`` publishes on two channels every process subscribes to. A nudge lost to a Redis
outage costs only latency: every process also reads the table once a poll interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jobchat.realtime.redis_client import redis_client
from jobchat.stopping import stop_tasks

log = logging.getLogger(__name__)

OnWake = Callable[[], None]
OnEphemeral = Callable[[dict[str, Any]], None]


class Bus(Protocol):
    async def start(
        self, on_wake: OnWake, on_ephemeral: OnEphemeral, on_reconnect: OnWake = lambda: None
    ) -> None:
        """``on_reconnect``: the bus is back after an outage (what it shares may be gone)."""

    def wake_others(self) -> None:
        """This process committed events: nudge the other processes to read them."""

    def send_ephemeral(self, message: dict[str, Any]) -> None:
        """Hand an ephemeral message to every process, this one included."""

    async def ping(self) -> None:
        """Raise if the bus cannot reach the other processes (for /readyz)."""

    async def broadcast(self, message: dict[str, Any]) -> None:
        """Like ``send_ephemeral``, but return only once the other processes have been sent it
        (or sending failed): for news its sender answers for, such as a revoked token."""

    async def stop(self) -> None: ...


class LocalBus:
    """One process: nobody else to wake, and ephemeral messages go straight back."""

    def __init__(self) -> None:
        self._on_ephemeral: OnEphemeral | None = None

    async def start(
        self, on_wake: OnWake, on_ephemeral: OnEphemeral, on_reconnect: OnWake = lambda: None
    ) -> None:
        self._on_ephemeral = on_ephemeral

    def wake_others(self) -> None:
        pass

    def send_ephemeral(self, message: dict[str, Any]) -> None:
        if self._on_ephemeral is not None:
            self._on_ephemeral(message)

    async def ping(self) -> None:
        pass

    async def broadcast(self, message: dict[str, Any]) -> None:
        self.send_ephemeral(message)

    async def stop(self) -> None:
        self._on_ephemeral = None


class RedisBus:
    """Redis pub/sub between processes. Each message names the process that sent it, so a
    process handles its own ephemeral messages at once and ignores their echo."""

    def __init__(self, url: str, *, prefix: str, retry_seconds: float = 1.0) -> None:
        self.origin = uuid.uuid4().hex
        self.prefix = prefix
        # Pub/sub channels ignore Redis's database number: the prefix keeps deployments apart.
        self._wake_channel = f"{prefix}:wake"
        self._ephemeral_channel = f"{prefix}:ephemeral"
        # At most two connections are ours (the subscription and the publisher); presence
        # bounds its own (RedisPresence), well under the pool's 100.
        self._redis: aioredis.Redis = redis_client(url)
        self._retry = retry_seconds
        self._outbox: deque[tuple[str, str]] = deque(maxlen=10_000)
        self._wake_pending = False
        self._publish_failing = False
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_wake: OnWake = lambda: None
        self._on_ephemeral: OnEphemeral = lambda _message: None
        self._on_reconnect: OnWake = lambda: None

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def start(
        self, on_wake: OnWake, on_ephemeral: OnEphemeral, on_reconnect: OnWake = lambda: None
    ) -> None:
        self._on_wake = on_wake
        self._on_ephemeral = on_ephemeral
        self._on_reconnect = on_reconnect
        self._tasks = [
            asyncio.create_task(self._listen(), name="jobchat-bus-listen"),
            asyncio.create_task(self._publish(), name="jobchat-bus-publish"),
        ]

    def wake_others(self) -> None:
        # Nudges coalesce: one publish covers every commit made before it went out.
        if not self._wake_pending:
            self._wake_pending = True
            self._ready.set()

    def send_ephemeral(self, message: dict[str, Any]) -> None:
        self._on_ephemeral(message)
        payload = json.dumps({**message, "origin": self.origin})
        self._outbox.append((self._ephemeral_channel, payload))
        self._ready.set()

    async def broadcast(self, message: dict[str, Any]) -> None:
        self._on_ephemeral(message)
        payload = json.dumps({**message, "origin": self.origin})
        # Redis hands a published message to the subscribers before it answers the publisher.
        # Bounded: with Redis away, the caller's stored event reaches the others at their next
        # poll of the event table instead.
        try:
            async with asyncio.timeout(max(self._retry, 1.0)):
                await self._redis.publish(self._ephemeral_channel, payload)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("broadcasting over Redis failed: %s", exc)

    async def _publish(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            try:
                if self._wake_pending:
                    self._wake_pending = False
                    await self._redis.publish(self._wake_channel, self.origin)
                while self._outbox:
                    channel, payload = self._outbox[0]
                    await self._redis.publish(channel, payload)
                    self._outbox.popleft()
            except (RedisError, OSError) as exc:
                # Other processes pick the events up at their next poll; typing signals are
                # worth nothing late, so they are dropped rather than replayed.
                if not self._publish_failing:
                    log.warning("publishing to Redis failed (%s); dropping until it works", exc)
                self._publish_failing = True
                self._outbox.clear()
                await asyncio.sleep(self._retry)
            else:
                if self._publish_failing:
                    log.info("publishing to Redis works again")
                self._publish_failing = False

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._wake_channel, self._ephemeral_channel)
                    if failures:
                        log.info("Redis subscription back after %d failed attempts", failures)
                        failures = 0
                        # A restarted Redis has lost what it held (presence): restate it now.
                        self._on_reconnect()
                    # Anything committed while we were not listening is read now.
                    self._on_wake()
                    async for message in pubsub.listen():
                        self._received(message)
            except (RedisError, OSError) as exc:
                # Said once per outage, not once a second: the events still arrive meanwhile,
                # by each process's poll of the table.
                if not failures:
                    log.warning(
                        "Redis subscription lost (%s); retrying every %gs", exc, self._retry
                    )
                failures += 1
                await asyncio.sleep(self._retry)

    def _received(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        payload = message["data"].decode()
        if channel == self._wake_channel:
            if payload != self.origin:
                self._on_wake()
            return
        try:
            decoded = json.loads(payload)
        except ValueError:
            return
        if isinstance(decoded, dict) and decoded.pop("origin", None) != self.origin:
            self._on_ephemeral(decoded)

    async def ping(self) -> None:
        await self._redis.ping()

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        await self._redis.aclose()

"""The one way jobchat opens a Redis client, so the bus and a worker's presence agree on how
long to wait for Redis and when to try again.

``from_url`` builds its connection pool without redis-py's default retry policy: a single
connection attempt that outlasted its timeout failed the command. On a loaded machine (a CI run
with two test passes and a browser on two cores) an attempt on loopback has taken over two
seconds; another attempt after a short, jittered pause rides that out, while a Redis that is
really away still fails within seconds, and the callers' own loops (the bus's reconnect, presence's
refresh) take it from there.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0
# redis-py applies the policy twice over, to a connection attempt and to the command around it:
# one retry means at most four attempts (8 s against a Redis that never takes the connection).
RETRIES = 1


def redis_client(
    url: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    command_timeout: float = COMMAND_TIMEOUT_SECONDS,
) -> aioredis.Redis:
    """A client for ``url`` that connects lazily, on the event loop of its first command.

    Retried commands are all safe to repeat: presence writes set or delete the same fields, a
    repeated wake only makes the other processes read the table once more, and a repeated
    typing or presence signal says again what the screen already shows."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=command_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), RETRIES),
    )

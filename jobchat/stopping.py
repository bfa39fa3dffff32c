"""Stopping background tasks for good, even when a cancellation gets lost on the way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def stop_tasks(
    tasks: Iterable[asyncio.Task[None]], *, timeout: float = 6.0, grace: float = 2.0
) -> None:
    """Cancel the tasks and wait until they have ended, for at most ``timeout`` seconds.

    A plain ``task.cancel(); await task`` waits forever when the cancellation is lost: code that
    catches ``CancelledError`` while it cleans up, and carries on. It happened here with the
    Redis publisher: after its cancel it was back waiting for work, ``jobchat serve`` never got
    past "Waiting for application shutdown." and was killed after 20 s (bench/README.md). So a
    task still running ``grace`` seconds after its cancel (time enough to clean up) is cancelled
    again, until it ends or ``timeout`` is up; one that outlives that is logged and left to the
    loop's own shutdown.
    """
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            names = sorted(task.get_name() for task in pending)
            log.warning("background tasks still running after %.0f s: %s", timeout, names)
            break
        _, pending = await asyncio.wait(pending, timeout=min(grace, left))
    for task in tasks:
        # What a plain ``await task`` would have raised: a task that failed is not silent.
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            log.error("background task %s failed", task.get_name(), exc_info=error)

"""Background tasks stop for good, even when one of them loses its cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from jobchat.stopping import stop_tasks


async def _forever() -> None:
    await asyncio.sleep(3600)


async def _loses_one_cancel() -> None:
    """Catches the first cancellation and goes back to waiting, as the Redis publisher did."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)


async def _never_stops() -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue


async def _fails() -> None:
    raise RuntimeError("broken job")


def test_tasks_that_take_their_cancellation_stop_at_once() -> None:
    async def scenario() -> float:
        tasks = [asyncio.create_task(_forever()) for _ in range(3)]
        await asyncio.sleep(0)
        started = time.monotonic()
        await stop_tasks(tasks)
        assert all(task.cancelled() for task in tasks)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_a_task_that_lost_its_cancellation_is_cancelled_again() -> None:
    async def scenario() -> tuple[bool, float]:
        stubborn = asyncio.create_task(_loses_one_cancel())
        await asyncio.sleep(0)
        started = time.monotonic()
        await stop_tasks([stubborn], timeout=5, grace=0.2)
        return stubborn.done(), time.monotonic() - started

    done, took = asyncio.run(scenario())
    assert done
    assert 0.2 <= took < 2.0  # one grace period, then the second cancel takes


def test_a_task_that_never_stops_is_logged_and_left_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> float:
        hopeless = asyncio.create_task(_never_stops(), name="hopeless")
        await asyncio.sleep(0)
        started = time.monotonic()
        await stop_tasks([hopeless], timeout=0.5, grace=0.1)
        took = time.monotonic() - started
        assert not hopeless.done()
        # What the loop's own shutdown would do: one that ignores every cancel is dropped.
        hopeless.get_coro().close()
        return took

    with caplog.at_level(logging.WARNING, logger="jobchat.stopping"):
        took = asyncio.run(scenario())
    assert took < 2.0
    assert "still running" in caplog.text and "hopeless" in caplog.text


def test_a_task_that_failed_is_reported_not_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        failed = asyncio.create_task(_fails(), name="failing-job")
        await asyncio.sleep(0)
        await stop_tasks([failed])

    with caplog.at_level(logging.ERROR, logger="jobchat.stopping"):
        asyncio.run(scenario())
    assert "failing-job failed" in caplog.text
    assert "broken job" in caplog.text

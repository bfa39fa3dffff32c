"""A bulk run (and a scheduled send) under a full line of requests waiting to write: its writes
are the jobs worker's, so they wait ahead of the requests rather than being turned away with
WriteBusy (which would count as a failed attempt, backed off and, in the end, given up)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed
from jobchat.scheduling.bulk.actions import BULK_JOB
from jobchat.scheduling.bulk.runner import BulkRunner
from jobchat.scheduling.sender import ScheduledSender
from tests.support import World, body
from tests.test_bulk_api import BULK, post, thread_of
from tests.test_jobqueue_busy import holding, wait_for_waiters


def under_a_full_line(db: Database, job: Callable[[], Any]) -> list[BaseException]:
    """Run ``job`` in a thread while the write turn is held and the requests' line is full
    (one request waiting, ``max_waiting`` 1); what it raised."""
    errors: list[BaseException] = []

    def request() -> None:
        with db.write():
            pass

    def run() -> None:
        try:
            job()
        except BaseException as exc:
            errors.append(exc)

    with holding(db):
        waiting = threading.Thread(target=request)
        waiting.start()
        wait_for_waiters(db, 1)
        running = threading.Thread(target=run)
        running.start()
        deadline = time.monotonic() + 5
        # Queued behind the holder (ahead of the request), or turned away at once.
        while db.write_turn.waiting < 2 and running.is_alive():
            assert time.monotonic() < deadline, "the job neither queued nor ended"
            time.sleep(0.005)
    waiting.join(10)
    running.join(10)
    return errors


def test_a_bulk_run_waits_ahead_of_a_full_line_of_requests(
    world: World,
    db: Database,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tess = world["emp_team"]
    queued = post(tess, applications=["app1", "app2"], body="Hello")
    monkeypatch.setattr(db.write_turn, "max_waiting", 1)
    runner = BulkRunner(db=db, settings=settings, clock=clock)
    job = Claimed(id=0, kind=BULK_JOB, payload={"bulk_id": queued["id"], "step": 0}, attempt=1)

    assert under_a_full_line(db, lambda: asyncio.run(runner.run(job))) == []
    done = body(tess.get(f"{BULK}/{queued['id']}"), 200)
    assert (done["status"], done["sent"]) == ("done", 2)
    assert [m["body"] for m in thread_of(world["cand2"], "app2")] == ["Hello"]


def test_a_scheduled_send_waits_ahead_of_a_full_line_of_requests(
    db: Database, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.write_turn, "max_waiting", 1)
    sender = ScheduledSender(db=db, settings=settings, clock=clock)
    # No such scheduled message: the send does nothing, once it has had its turn to write.
    assert under_a_full_line(db, lambda: sender.post(123456, 1)) == []

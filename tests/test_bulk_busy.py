"""A bulk run (and a scheduled send) under a full line of requests waiting to write: its writes
are ordinary writers', turned away at once with WriteBusy, and the worker runs the job again
shortly, neither counting a failed attempt nor backing it off, so it still completes (and sends
nothing twice). Its writes do not wait ahead of requests: only the worker's bookkeeping does,
and writers that loop there would keep requests from their turn."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed, RetryPolicy
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import JobKind, Settle, Worker
from jobchat.scheduling.bulk.actions import BULK_JOB
from jobchat.scheduling.bulk.runner import BulkRunner
from jobchat.scheduling.sender import ScheduledSender
from tests.support import World, body
from tests.test_bulk_api import BULK, post, thread_of
from tests.test_jobqueue_busy import holding, wait_for_waiters

# A backoff far longer than the clock is advanced: a run counted as failed would not come back.
POLICY = RetryPolicy(max_attempts=4, base_seconds=600, max_seconds=600, lease_seconds=300)


@contextmanager
def a_full_line(db: Database) -> Iterator[None]:
    """The write turn held and the requests' line full (one request waiting, ``max_waiting``
    1): an ordinary writer is turned away at once."""

    def request() -> None:
        with db.write():
            pass

    with holding(db):
        waiting = threading.Thread(target=request)
        waiting.start()
        wait_for_waiters(db, 1)
        yield
    waiting.join(10)


def first_run_under_a_full_line(db: Database, kinds: Mapping[str, JobKind]) -> dict[str, JobKind]:
    runs: list[int] = []

    def wrap(kind: JobKind) -> JobKind:
        async def run(job: Claimed) -> Settle | None:
            runs.append(job.id)
            if len(runs) > 1:
                return await kind.run(job)
            with a_full_line(db):
                return await kind.run(job)

        return JobKind(run=run, on_failure=kind.on_failure, close=kind.close)

    return {name: wrap(kind) for name, kind in kinds.items()}


def attempts_of(db: Database, kind: str) -> list[tuple[JobStatus, int]]:
    with db.read() as session:
        rows = session.execute(
            select(QueuedJob.status, QueuedJob.attempts).where(QueuedJob.kind == kind)
        )
        return [(JobStatus(status), attempts) for status, attempts in rows]


def drain_twice(worker: Worker, clock: FrozenClock) -> None:
    asyncio.run(worker.drain())  # the run meets the full line and is given back
    clock.advance(seconds=1)  # "shortly": well within the policy's backoff (600 s)
    asyncio.run(worker.drain())


def test_a_bulk_run_under_a_full_line_of_requests_runs_again_and_completes(
    world: World,
    db: Database,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tess = world["emp_team"]
    queued = post(tess, applications=["app1", "app2"], body="Hello")
    monkeypatch.setattr(db.write_turn, "max_waiting", 1)
    monkeypatch.setattr(db.write_turn, "timeout", 0.5)
    runner = BulkRunner(db=db, settings=settings, clock=clock)
    kinds = first_run_under_a_full_line(db, runner.job_kinds())
    worker = Worker(db=db, clock=clock, policy=POLICY, kinds=kinds, name="w")

    drain_twice(worker, clock)

    done = body(tess.get(f"{BULK}/{queued['id']}"), 200)
    assert (done["status"], done["sent"]) == ("done", 2)
    assert [m["body"] for m in thread_of(world["cand2"], "app2")] == ["Hello"]
    assert [m["body"] for m in thread_of(world["cand"], "app1")] == ["Hello"]
    assert attempts_of(db, BULK_JOB) == [(JobStatus.done, 1)]


def test_a_scheduled_send_under_a_full_line_of_requests_runs_again_and_is_sent_once(
    world: World,
    db: Database,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tess = world["emp_team"]
    chat = int(body(tess.start("application", application="app1"), 201)["id"])
    when = (clock.now() + timedelta(minutes=5)).isoformat()
    body(tess.send(chat, "Tomorrow then", send_at=when), 202)
    clock.advance(minutes=6)
    monkeypatch.setattr(db.write_turn, "max_waiting", 1)
    monkeypatch.setattr(db.write_turn, "timeout", 0.5)
    sender = ScheduledSender(db=db, settings=settings, clock=clock)
    kinds = first_run_under_a_full_line(db, sender.job_kinds())
    worker = Worker(db=db, clock=clock, policy=POLICY, kinds=kinds, name="w")

    drain_twice(worker, clock)

    messages = body(tess.messages(chat), 200)["items"]
    assert [m["body"] for m in messages] == ["Tomorrow then"]
    (scheduled_job,) = attempts_of(db, next(iter(kinds)))
    assert scheduled_job == (JobStatus.done, 1)

"""A worker with threads of its own computes its jobs on them, no more at once than it has,
while its jobs still wait (on SMTP, HTTP) side by side; one without runs them on the event
loop's threads, as before. What the job's task knew follows the work onto the thread."""

from __future__ import annotations

import asyncio
import threading
import time
from contextvars import ContextVar

import pytest
from sqlalchemy.orm import Session

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed, RetryPolicy, enqueue
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, Settle, Worker

POLICY = RetryPolicy(max_attempts=2, base_seconds=10, max_seconds=60, lease_seconds=300)
JOBS = 6

_job_number: ContextVar[int] = ContextVar("test_job_number", default=-1)


class Computing:
    """Jobs that wait a little on the loop (as on a mail server), then compute on a thread."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.waiting_on_the_loop = 0
        self.most_waiting = 0
        self.threads: set[str] = set()
        self.seen_numbers: list[tuple[int, int]] = []
        self.barrier = barrier

    def compute(self, n: int) -> None:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.threads.add(threading.current_thread().name)
            self.seen_numbers.append((n, _job_number.get()))
        try:
            if self.barrier is not None:
                self.barrier.wait()  # returns only when two jobs compute at once
            else:
                time.sleep(0.02)
        finally:
            with self.lock:
                self.running -= 1

    async def run(self, job: Claimed) -> Settle | None:
        n = int(job.payload["n"])
        _job_number.set(n)
        self.waiting_on_the_loop += 1
        self.most_waiting = max(self.most_waiting, self.waiting_on_the_loop)
        await asyncio.sleep(0.05)
        self.waiting_on_the_loop -= 1
        await in_thread(self.compute, n)
        return None


def run_jobs(db: Database, clock: FrozenClock, computing: Computing, threads: int | None) -> None:
    with db.write() as session:
        for n in range(JOBS):
            enqueue(session, "test.compute", {"n": n}, now=clock.now())
    worker = Worker(
        db=db,
        clock=clock,
        policy=POLICY,
        kinds={"test.compute": JobKind(run=computing.run)},
        concurrency=JOBS,
        threads=threads,
    )
    assert asyncio.run(worker.drain()) == JOBS


def test_a_worker_with_one_thread_computes_one_job_at_a_time_and_waits_on_all(
    db: Database, clock: FrozenClock
) -> None:
    computing = Computing()
    run_jobs(db, clock, computing, threads=1)
    assert computing.most_at_once == 1
    assert computing.most_waiting == JOBS  # the jobs' waits still overlap
    assert len(computing.threads) == 1
    assert computing.threads.pop().startswith("jobchat-jobs")
    # Each job's thread work saw its own task's context.
    assert sorted(computing.seen_numbers) == [(n, n) for n in range(JOBS)]


def test_a_worker_without_threads_of_its_own_computes_side_by_side(
    db: Database, clock: FrozenClock
) -> None:
    computing = Computing(barrier=threading.Barrier(2, timeout=10))
    run_jobs(db, clock, computing, threads=None)
    assert computing.most_at_once >= 2
    assert not any(name.startswith("jobchat-jobs") for name in computing.threads)


@pytest.mark.parametrize("threads", [1, None])
def test_claims_and_settles_go_through_on_the_workers_threads(
    db: Database, clock: FrozenClock, threads: int | None
) -> None:
    """The worker's own writes (claims, settles) run through in_thread too: on one thread,
    shared with the jobs' work, every job is still taken and settled once."""
    settled: list[int] = []

    async def run(job: Claimed) -> Settle | None:
        def settle(session: Session, now: object) -> None:
            settled.append(int(job.payload["n"]))

        return settle

    with db.write() as session:
        for n in range(3):
            enqueue(session, "test.settle", {"n": n}, now=clock.now())
    worker = Worker(
        db=db,
        clock=clock,
        policy=POLICY,
        kinds={"test.settle": JobKind(run=run)},
        threads=threads,
    )
    assert asyncio.run(worker.drain()) == 3
    assert sorted(settled) == [0, 1, 2]

"""The jobs worker under a full write turn: requests queueing for their turn to write do not
starve it, and a write that could not get its turn in time is tried again at once, not backed
off as if the database were away (on PostgreSQL the worker does not queue for the turn at all,
and these hold trivially)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.db.turn import WriteBusy
from jobchat.jobqueue.actions import Claimed, RetryPolicy, enqueue
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import JobKind, Settle, Worker

POLICY = RetryPolicy(max_attempts=4, base_seconds=10, max_seconds=60, lease_seconds=300)


class Holder:
    """Another thread of the process holding the write turn until told to let go."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.held = threading.Event()
        self.let_go = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with self.db.write():
            self.held.set()
            self.let_go.wait(10)

    def start(self) -> None:
        self.thread.start()
        assert self.held.wait(5)

    def release(self) -> None:
        self.let_go.set()
        self.thread.join(10)


@contextmanager
def holding(db: Database) -> Iterator[Holder]:
    holder = Holder(db)
    holder.start()
    try:
        yield holder
    finally:
        holder.release()


def settle_nothing(session: Session, now: datetime) -> None:
    return None


def make_worker(db: Database, clock: FrozenClock, run: JobKind) -> Worker:
    return Worker(db=db, clock=clock, policy=POLICY, kinds={"test.job": run}, concurrency=4)


def queue_one(db: Database, clock: FrozenClock) -> int:
    with db.write() as session:
        job = enqueue(session, "test.job", {"n": 1}, now=clock.now())
        session.flush()
        return job.id


def status_of(db: Database, job_id: int) -> JobStatus:
    with db.read() as session:
        status = session.scalar(select(QueuedJob.status).where(QueuedJob.id == job_id))
        assert status is not None
        return JobStatus(status)


def wait_for_waiters(db: Database, count: int) -> None:
    deadline = time.monotonic() + 5
    while db.write_turn.waiting < count:
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.005)


def wait_for_claim(db: Database, job_id: int) -> None:
    deadline = time.monotonic() + 5
    while status_of(db, job_id) is JobStatus.queued:
        assert time.monotonic() < deadline, "the worker never took the job"
        time.sleep(0.005)


def drain_in_thread(worker: Worker, ran: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: ran.append(asyncio.run(worker.drain())))
    thread.start()
    return thread


async def ok(job: Claimed) -> Settle | None:
    return settle_nothing


def test_the_worker_takes_its_jobs_ahead_of_a_full_line_of_requests(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.write_turn, "max_waiting", 1)
    job_id = queue_one(db, clock)
    seen_by_request: list[JobStatus] = []

    def request() -> None:
        with db.write() as session:
            job = session.get(QueuedJob, job_id)
            assert job is not None
            seen_by_request.append(JobStatus(job.status))

    ran: list[int] = []
    with holding(db) as holder:
        waiting = threading.Thread(target=request)
        waiting.start()
        if db.is_sqlite:
            wait_for_waiters(db, 1)
            # The requests' line is full: one more request is turned away at once ...
            with pytest.raises(WriteBusy), db.write():
                pass
        # ... and the worker still queues, ahead of the request that came first.
        draining = drain_in_thread(make_worker(db, clock, JobKind(run=ok)), ran)
        if db.is_sqlite:
            wait_for_waiters(db, 2)
        else:
            wait_for_claim(db, job_id)  # PostgreSQL: its claims do not queue for the turn
        holder.release()
        waiting.join(10)
        draining.join(10)
    assert ran == [1]
    assert seen_by_request == [JobStatus.running] or seen_by_request == [JobStatus.done]
    assert status_of(db, job_id) is JobStatus.done


def test_a_claim_that_times_out_waiting_for_the_turn_is_tried_again_at_once(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.write_turn, "timeout", 0.1)
    job_id = queue_one(db, clock)
    ran: list[int] = []
    started = time.monotonic()
    with holding(db):
        draining = drain_in_thread(make_worker(db, clock, JobKind(run=ok)), ran)
        time.sleep(0.3)  # the hold outlasts the claim's wait (0.1 s) a few times over
    draining.join(10)
    elapsed = time.monotonic() - started
    # Taken within a few tries of the turn coming free, not after the back-off for a database
    # that is away (1 s, then doubling); drain() no longer gives up on a busy database either.
    assert ran == [1]
    assert elapsed < 0.9, elapsed
    assert status_of(db, job_id) is JobStatus.done


def test_a_job_whose_record_waits_out_the_turn_is_recorded_as_soon_as_it_frees(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.write_turn, "timeout", 0.1)
    job_id = queue_one(db, clock)
    runs: list[int] = []
    holder = Holder(db)

    async def run_while_a_request_writes(job: Claimed) -> Settle | None:
        runs.append(job.id)
        holder.start()  # the turn is taken while the job runs: its record must wait

        def let_go_later() -> None:
            time.sleep(0.3)
            holder.release()

        threading.Thread(target=let_go_later).start()
        return settle_nothing

    started = time.monotonic()
    ran = asyncio.run(make_worker(db, clock, JobKind(run=run_while_a_request_writes)).drain())
    elapsed = time.monotonic() - started
    assert ran == 1 and runs == [job_id]  # run once: recorded, not left to its lease
    assert elapsed < 0.9, elapsed
    assert status_of(db, job_id) is JobStatus.done


def test_jobs_done_together_are_recorded_together_and_one_failing_write_spoils_no_other(
    db: Database, clock: FrozenClock
) -> None:
    ids = [queue_one(db, clock) for _ in range(6)]
    bad = ids[2]

    async def run(job: Claimed) -> Settle | None:
        def settle(session: Session, now: datetime) -> None:
            row = session.get(QueuedJob, job.id)
            assert row is not None
            if job.id == bad:
                raise RuntimeError("this job's own write fails")
            row.payload = {**row.payload, "settled": True}

        return settle

    worker = make_worker(db, clock, JobKind(run=run))
    assert asyncio.run(worker.drain()) == 6  # two rounds (concurrency 4), each one batch
    with db.read() as session:
        rows = {row.id: row for row in session.scalars(select(QueuedJob))}
    for job_id in ids:
        row = rows[job_id]
        if job_id == bad:
            # Not recorded: still leased to the worker, to run again when the lease ends.
            assert row.status == JobStatus.running and "settled" not in row.payload
        else:
            assert row.status == JobStatus.done and row.payload["settled"] is True
    assert worker.stats.done == 5

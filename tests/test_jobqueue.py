"""The job queue and its worker, with job kinds defined here: atomic with the change that
queues them, retried with exponential backoff, failed for good visibly, leases that survive a
dead worker, several workers at once without running a job twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed, RetryPolicy, claim_due, enqueue, finish
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.queries import counts_by_status
from jobchat.jobqueue.worker import Failure, JobKind, PermanentFailure, Settle, Worker

POLICY = RetryPolicy(max_attempts=4, base_seconds=10, max_seconds=60, lease_seconds=300)


class Recorder:
    """Job kinds that record what they did, and fail on demand."""

    def __init__(self) -> None:
        self.runs: Counter[int] = Counter()
        self.failures: list[tuple[int, str, bool]] = []
        self.fail_next = 0
        self.permanent = False
        self.lock = threading.Lock()

    async def run(self, job: Claimed) -> Settle | None:
        with self.lock:
            self.runs[int(job.payload["n"])] += 1
            failing = self.fail_next > 0
            self.fail_next -= 1 if failing else 0
        await asyncio.sleep(0.001)
        if failing:
            if self.permanent:
                raise PermanentFailure("the address does not exist")
            raise ConnectionError("server away")

        def settle(session: Session, now: datetime) -> None:
            job_row = session.get(QueuedJob, job.id)
            assert job_row is not None
            # What a real job records with its success, e.g. a delivery marked sent.
            job_row.payload = {**job_row.payload, "settled_at": now.isoformat()}

        return settle

    def on_failure(self, session: Session, job: Claimed, failure: Failure, now: datetime) -> None:
        self.failures.append((job.attempt, failure.error, failure.final))

    def kinds(self) -> dict[str, JobKind]:
        return {"test.job": JobKind(run=self.run, on_failure=self.on_failure)}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_worker(db: Database, clock: FrozenClock, recorder: Recorder, name: str = "w1") -> Worker:
    return Worker(
        db=db, clock=clock, policy=POLICY, kinds=recorder.kinds(), concurrency=4, name=name
    )


def queue(db: Database, clock: FrozenClock, *numbers: int, kind: str = "test.job") -> None:
    with db.write() as session:
        for n in numbers:
            enqueue(session, kind, {"n": n}, now=clock.now())


def jobs(db: Database) -> list[QueuedJob]:
    with db.read() as session:
        return list(session.scalars(select(QueuedJob).order_by(QueuedJob.id)))


def test_backoff_doubles_up_to_its_cap_with_a_little_jitter() -> None:
    for attempts, expected in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)]:
        delays = {POLICY.delay(attempts).total_seconds() for _ in range(50)}
        assert all(0.8 * expected <= d <= expected for d in delays), (attempts, delays)
        assert len(delays) > 1  # jittered, so that an outage's jobs do not return together


def test_a_job_is_queued_only_if_the_change_that_queued_it_commits(
    db: Database, clock: FrozenClock
) -> None:
    def failing_change() -> None:
        with db.write() as session:
            enqueue(session, "test.job", {"n": 1}, now=clock.now())
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert jobs(db) == []


def test_a_job_runs_once_and_what_it_settles_commits_with_its_done_state(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    queue(db, clock, 1)
    worker = make_worker(db, clock, recorder)
    assert asyncio.run(worker.drain()) == 1
    assert asyncio.run(worker.drain()) == 0
    (job,) = jobs(db)
    assert job.status == JobStatus.done and job.attempts == 1
    assert job.payload["settled_at"] == clock.now().isoformat()
    assert recorder.runs == Counter({1: 1})


def test_a_failing_job_is_retried_with_backoff_then_fails_for_good_with_its_reason(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    recorder.fail_next = 99
    queue(db, clock, 1)
    worker = make_worker(db, clock, recorder)
    for attempt in range(1, 5):
        assert asyncio.run(worker.drain()) == 1
        (job,) = jobs(db)
        assert job.attempts == attempt
        assert job.last_error == "ConnectionError: server away"
        if attempt < 4:
            assert job.status == JobStatus.queued
            wait = (job.run_at - clock.now()).total_seconds()
            assert 0.8 * 10 * 2 ** (attempt - 1) <= wait <= 10 * 2 ** (attempt - 1)
            assert asyncio.run(worker.drain()) == 0  # not before its time
            clock.advance(seconds=wait)
    (job,) = jobs(db)
    assert job.status == JobStatus.failed and job.finished_at == clock.now()
    assert [final for _, _, final in recorder.failures] == [False, False, False, True]
    assert counts_by_status_of(db) == {"failed": 1}


def counts_by_status_of(db: Database) -> dict[str, int]:
    with db.read() as session:
        return counts_by_status(session)


def test_a_permanent_failure_is_not_retried(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    recorder.fail_next, recorder.permanent = 1, True
    queue(db, clock, 1)
    asyncio.run(make_worker(db, clock, recorder).drain())
    (job,) = jobs(db)
    assert job.status == JobStatus.failed and job.attempts == 1
    assert job.last_error == "the address does not exist"
    assert recorder.failures == [(1, "the address does not exist", True)]


def test_a_job_of_an_unknown_kind_fails_saying_so(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    queue(db, clock, 1, kind="nobody.handles.this")
    asyncio.run(make_worker(db, clock, recorder).drain())
    (job,) = jobs(db)
    assert job.status == JobStatus.failed
    assert job.last_error == "no handler for jobs of kind 'nobody.handles.this'"


def test_a_dead_workers_job_waits_out_its_lease_then_runs_elsewhere(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    queue(db, clock, 1)
    with db.work() as session:
        (taken,) = claim_due(session, now=clock.now(), worker="dead", policy=POLICY, limit=1)
    worker = make_worker(db, clock, recorder)
    assert asyncio.run(worker.drain()) == 0
    clock.advance(seconds=POLICY.lease_seconds)
    assert asyncio.run(worker.drain()) == 1
    (job,) = jobs(db)
    assert job.status == JobStatus.done and job.attempts == 2
    with db.work() as session:
        assert not finish(session, taken.id, worker="dead", attempt=taken.attempt, now=clock.now())


def test_several_workers_at_once_run_every_job_exactly_once(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    queue(db, clock, *range(60))
    workers = [make_worker(db, clock, recorder, name=f"w{i}") for i in range(3)]
    ran: dict[str, int] = {}

    def drive(worker: Worker) -> None:
        ran[worker.name] = asyncio.run(worker.drain())

    threads = [threading.Thread(target=drive, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert recorder.runs == Counter(dict.fromkeys(range(60), 1))
    assert sum(ran.values()) == 60
    assert counts_by_status_of(db) == {"done": 60}


def test_a_running_worker_is_woken_by_a_commit_that_queues_a_job(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    worker = Worker(
        db=db, clock=clock, policy=POLICY, kinds=recorder.kinds(), poll_seconds=30, name="w"
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(worker.run(),))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while worker.wake not in db.on_jobs_committed and time.monotonic() < deadline:
            time.sleep(0.01)
        queue(db, clock, 7)
        # Far sooner than the 30 s poll.
        while not recorder.runs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.runs == Counter({7: 1})
    finally:
        asyncio.run_coroutine_threadsafe(worker.stop(), loop).result(10)
        thread.join(10)
        loop.close()
    assert worker.wake not in db.on_jobs_committed


def test_finished_jobs_are_pruned_and_failed_ones_kept(
    db: Database, clock: FrozenClock, recorder: Recorder
) -> None:
    from jobchat.jobqueue.actions import prune_done

    recorder.fail_next, recorder.permanent = 1, True
    queue(db, clock, 1, 2)
    asyncio.run(make_worker(db, clock, recorder).drain())
    with db.work() as session:
        assert prune_done(session, before=clock.now() + timedelta(seconds=1)) == 1
    assert [j.status for j in jobs(db)] == [JobStatus.failed]

"""A job's attempt number fences its records: a late record of an earlier attempt cannot settle
a later one, even when both claims were the same worker's; a busy database neither makes the
worker hang on a record nor ``drain()`` loop for ever, and a job's run that finds the database
busy runs again without counting a failed attempt."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.db.turn import WriteBusy
from jobchat.jobqueue.actions import Claimed, claim_due, finish, finish_many, retry_or_fail
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import DatabaseBusy, JobKind, Settle
from tests.test_jobqueue_busy import POLICY, Holder, holding, make_worker, ok, queue_one


def row(db: Database, job_id: int) -> QueuedJob:
    with db.read() as session:
        job = session.scalar(select(QueuedJob).where(QueuedJob.id == job_id))
        assert job is not None
        session.expunge(job)
        return job


def claim(db: Database, clock: FrozenClock, worker: str) -> Claimed:
    with db.work() as session:
        (taken,) = claim_due(session, now=clock.now(), worker=worker, policy=POLICY, limit=1)
    return taken


def test_a_late_record_of_an_earlier_attempt_does_not_settle_the_rerun(
    db: Database, clock: FrozenClock
) -> None:
    job_id = queue_one(db, clock)
    first = claim(db, clock, "w")
    clock.advance(seconds=POLICY.lease_seconds + 1)
    second = claim(db, clock, "w")  # the same worker name, after the first lease ran out
    assert (first.attempt, second.attempt) == (1, 2)

    with db.work() as session:
        assert finish_many(session, {job_id: first.attempt}, worker="w", now=clock.now()) == set()
        assert not finish(session, job_id, worker="w", attempt=first.attempt, now=clock.now())
        status = retry_or_fail(
            session,
            job_id,
            "late",
            worker="w",
            attempt=first.attempt,
            now=clock.now(),
            policy=POLICY,
        )
        assert status is None
    job = row(db, job_id)
    assert (job.status, job.attempts, job.last_error) == (JobStatus.running, 2, None)

    with db.work() as session:
        assert finish_many(session, {job_id: second.attempt}, worker="w", now=clock.now()) == {
            job_id
        }
    assert row(db, job_id).status == JobStatus.done


def test_a_job_run_that_finds_the_database_busy_runs_again_without_a_failed_attempt(
    db: Database, clock: FrozenClock
) -> None:
    job_id = queue_one(db, clock)
    runs: list[int] = []

    async def busy_once(job: Claimed) -> Settle | None:
        runs.append(job.attempt)
        if len(runs) == 1:
            raise WriteBusy("no turn to write within 5 s")
        return await ok(job)

    worker = make_worker(db, clock, JobKind(run=busy_once))
    asyncio.run(worker.drain())
    job = row(db, job_id)
    assert (job.status, job.attempts, job.last_error) == (JobStatus.queued, 0, None)
    # Shortly: not after the policy's backoff (POLICY.base_seconds, 10 s).
    assert job.run_at.replace(tzinfo=None) <= (clock.now() + timedelta(seconds=1)).replace(
        tzinfo=None
    )
    clock.advance(seconds=1)
    asyncio.run(worker.drain())
    assert runs == [1, 1]  # the same attempt, run again
    job = row(db, job_id)
    assert (job.status, job.attempts) == (JobStatus.done, 1)
    assert (worker.stats.done, worker.stats.retried, worker.stats.failed) == (1, 0, 0)


def test_a_busy_record_is_given_up_once_the_lease_has_passed(
    db: Database,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL: the worker's records never wait for the write turn")
    monkeypatch.setattr(db.write_turn, "timeout", 0.05)
    job_id = queue_one(db, clock)
    holder = Holder(db)
    runs: list[int] = []

    async def outlives_its_lease(job: Claimed) -> Settle | None:
        runs.append(job.attempt)
        if len(runs) == 1:
            clock.advance(seconds=POLICY.lease_seconds + 1)
            holder.start()  # and the database is busy when it comes to be recorded
            threading.Timer(1.0, holder.release).start()
        return await ok(job)

    started = time.monotonic()
    try:
        with caplog.at_level(logging.ERROR, logger="jobchat.worker"):
            asyncio.run(make_worker(db, clock, JobKind(run=outlives_its_lease)).drain())
        elapsed = time.monotonic() - started
    finally:
        holder.release()
    assert "gives up recording job" in caplog.text
    # The first attempt's record was given up (the job was due to another claim), and the
    # second claim ran it and recorded it; the first did not settle the second.
    assert runs == [1, 2]
    job = row(db, job_id)
    assert (job.status, job.attempts) == (JobStatus.done, 2)
    assert elapsed < 5, elapsed


def test_drain_gives_up_when_the_database_stays_busy(
    db: Database,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL: the worker's claims never wait for the write turn")
    monkeypatch.setattr(db.write_turn, "timeout", 0.05)
    job_id = queue_one(db, clock)
    worker = make_worker(db, clock, JobKind(run=ok))
    started = time.monotonic()
    with holding(db), caplog.at_level(logging.ERROR, logger="jobchat.worker"):
        with pytest.raises(DatabaseBusy):
            asyncio.run(worker.drain(busy_retries=3))
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed  # not until the holder lets go (10 s)
    assert "the database stayed busy" in caplog.text
    assert row(db, job_id).status == JobStatus.queued  # untouched: the next drain runs it
    assert asyncio.run(worker.drain()) == 1


def test_drain_carries_on_through_a_short_busy_spell(db: Database, clock: FrozenClock) -> None:
    queue_one(db, clock)
    ran: list[int] = []
    holder = Holder(db)
    holder.start()
    threading.Timer(0.2, holder.release).start()
    ran.append(asyncio.run(make_worker(db, clock, JobKind(run=ok)).drain()))
    assert ran == [1]


class Ticking(FrozenClock):
    """Time passes as it does for ``jobchat worker --once``: a job given back is soon due."""

    def now(self) -> datetime:
        self.advance(seconds=0.1)
        return super().now()


def test_drain_gives_up_when_every_run_finds_the_database_busy(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Ticking()
    job_id = queue_one(db, clock)
    runs: list[int] = []

    async def always_busy(job: Claimed) -> Settle | None:
        runs.append(job.attempt)
        raise WriteBusy("no turn to write within 5 s")

    worker = make_worker(db, clock, JobKind(run=always_busy))
    with caplog.at_level(logging.ERROR, logger="jobchat.worker"), pytest.raises(DatabaseBusy):
        asyncio.run(worker.drain(busy_retries=3))
    assert runs == [1, 1, 1, 1]  # never counted as a failed attempt
    job = row(db, job_id)
    assert (job.status, job.attempts) == (JobStatus.queued, 0)

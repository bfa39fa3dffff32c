"""The worker: takes due jobs from the queue, runs them, and settles each in its own transaction.

One worker runs inside every ``jobchat serve`` (unless turned off) and ``jobchat worker`` runs
one on its own; any number may run against one database. A job's outcome is recorded together
with what the job changed (a delivery marked sent) in one transaction, and a job a dead worker
held is taken up again when its lease ends, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from jobchat.clock import Clock
from jobchat.db.engine import Database
from jobchat.db.failures import describe, is_busy, is_outage, retry_wait
from jobchat.db.turn import ahead_of_requests
from jobchat.jobqueue.actions import (
    Claimed,
    RetryPolicy,
    claim_due,
    finish,
    finish_many,
    retry_or_fail,
    run_again,
)
from jobchat.jobqueue.models import JobStatus
from jobchat.jobqueue.queries import anything_due
from jobchat.jobqueue.threads import in_thread, job_threads

log = logging.getLogger("jobchat.worker")

# While the database is away the worker looks again after a growing wait, up to this (or its
# poll interval, if longer).
MAX_BACKOFF_SECONDS = 30.0
# While the database is only busy (this process's write turn, or SQLite's lock, taken for as long
# as a write may wait) the worker tries again after this: the database is there, and every
# second of back-off is a second of pushes not sent while the sends keep coming.
BUSY_RETRY_SECONDS = 0.05
# How many times in a row ``drain()`` looks again while the database stays busy before it gives
# up: ``jobchat worker --once`` must end, and a database locked for this long (each look waits
# its turn for up to the write timeout) is not going to free up for it.
DRAIN_BUSY_RETRIES = 100


class DatabaseBusy(Exception):
    """``drain()`` found the database busy every time it looked, and gave up."""


# What a job does with the database once its work has succeeded, in the transaction that marks
# it done: the two commit together or not at all.
Settle = Callable[[Session, datetime], None]


class PermanentFailure(Exception):
    """This job can never succeed (a 5xx SMTP answer, an address that does not exist): fail
    it now instead of retrying. ``code`` is the outside service's own code for it, if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryAfter(Exception):
    """Try this job again after ``seconds`` (a service's Retry-After), instead of after the
    policy's backoff; None: after the backoff, as for any other failure. It still counts as an
    attempt, so a service that never recovers cannot keep a job alive for ever."""

    def __init__(self, message: str, *, seconds: float | None = None) -> None:
        super().__init__(message)
        self.seconds = seconds


@dataclass(frozen=True)
class Failure:
    """A failed attempt, as a job kind's failure hook sees it."""

    error: str
    final: bool  # failed for good: no attempt follows
    code: str | None = None


@dataclass(frozen=True)
class JobKind:
    run: Callable[[Claimed], Awaitable[Settle | None]]
    # Called in the transaction that records a failed attempt (and, when it is final, say,
    # marks its delivery failed).
    on_failure: Callable[[Session, Claimed, Failure, datetime], None] | None = None
    # Releases what the kind holds on the worker's event loop (an HTTP client session), when
    # the worker stops and at the end of each drain.
    close: Callable[[], Awaitable[None]] | None = None
    # At most this share of the worker's slots (at least one) runs jobs of this kind at once:
    # a kind that may wait long on someone else's server (a webhook endpoint that hangs until
    # the timeout) leaves the other slots to email, SMS and push. None: no limit.
    max_share: float | None = None


@dataclass(frozen=True)
class Periodic:
    """Housekeeping the worker does every so often (in a thread: it may use the database)."""

    name: str
    every_seconds: float
    run: Callable[[datetime], object]


@dataclass
class _Timer:
    task: Periodic
    next_at: float = 0.0


@dataclass
class _Done:
    """A job that succeeded, waiting to be recorded with its batch."""

    job: Claimed
    settle: Settle | None
    recorded: asyncio.Future[JobStatus | None]


@dataclass
class WorkerStats:
    done: int = 0
    retried: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        policy: RetryPolicy,
        kinds: Mapping[str, JobKind],
        concurrency: int = 8,
        poll_seconds: float = 1.0,
        periodic: Sequence[Periodic] = (),
        name: str | None = None,
        threads: int | None = None,
    ) -> None:
        """``threads``: run the jobs' blocking work on that many threads of the worker's own
        (``jobchat.jobqueue.threads``) rather than the event loop's."""
        self.db = db
        self.clock = clock
        self.policy = policy
        self.kinds = dict(kinds)
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.name = name or worker_name()
        self.stats = WorkerStats()
        self._timers = [_Timer(task) for task in periodic]
        self._tasks: set[asyncio.Task[None]] = set()
        # How many jobs of each capped kind are running (see JobKind.max_share).
        self._running: dict[str, int] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._stop_timeout = 10.0
        # Failed attempts in a row to take jobs (the database is away): the wait grows with it.
        self._failures = 0
        # The last attempt to take jobs found the database busy (not away), or a job's run did
        # and was given back to run again: look again soon.
        self._busy = False
        self._rerun = False
        # Jobs given back so far (see drain(): a round that gave every job back is busy too).
        self._given_back = 0
        # Jobs that succeeded, to be recorded by the one recorder task (see _record_done).
        self._done: list[_Done] = []
        self._recorder: asyncio.Task[None] | None = None
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    # --- waking -----------------------------------------------------------------------------

    def wake(self) -> None:
        """A job was queued (called from any thread, after its commit): look now, not at the
        next poll."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    # --- running ----------------------------------------------------------------------------

    def _job_threads(self) -> contextlib.AbstractContextManager[None]:
        """Where the jobs started in this block compute (the tasks inherit the context)."""
        if self._threads is not None and self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="jobchat-jobs")
        return job_threads(self._pool)

    async def run(self) -> None:
        """Work until ``stop()``."""
        try:
            with self._job_threads():
                await self._run()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # Woken by every commit in this process that queues a job; other processes' jobs are
        # found by polling.
        self.db.on_jobs_committed.append(self.wake)
        log.info("worker %s started", self.name)
        while not self._stopping:
            self._wake.clear()
            await self._housekeeping()
            free = self.concurrency - len(self._tasks)
            claimed = await self._claim(free, self._caps()) if free > 0 else []
            for job in claimed:
                self._spawn(job)
            if claimed and len(claimed) == free:
                continue  # there may be more due: take them as slots free up
            soon, self._rerun = self._busy or self._rerun, False
            with contextlib.suppress(TimeoutError):
                wait = BUSY_RETRY_SECONDS if soon else self._backoff(self._failures)
                await asyncio.wait_for(self._wake.wait(), wait)
        # Stopping: the jobs already running finish (and are recorded) before run() returns.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._stop_timeout)
        await self._close_kinds()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs and let the running ones finish; one that does not finish in time
        is taken up again when its lease ends."""
        self._stopping = True
        self._stop_timeout = timeout
        if self.wake in self.db.on_jobs_committed:
            self.db.on_jobs_committed.remove(self.wake)
        if self._wake is not None:
            self._wake.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        log.info("worker %s stopped", self.name)

    async def drain(self, *, busy_retries: int = DRAIN_BUSY_RETRIES) -> int:
        """Run every job that is due now, and the ones they make due, until none is left.
        For ``jobchat worker --once`` and for tests that drive time with a frozen clock.
        Raises ``DatabaseBusy`` when the database stays busy for ``busy_retries`` looks in a
        row (the jobs it ran meanwhile are recorded)."""
        with self._job_threads():
            return await self._drain(busy_retries)

    async def _drain(self, busy_retries: int) -> int:
        ran = 0
        busy = 0
        await self._housekeeping(force=True)
        try:
            while True:
                claimed = await self._claim(self.concurrency, self._caps())
                if not claimed and self._busy:
                    busy = self._still_busy(busy + 1, busy_retries, ran)
                    await asyncio.sleep(BUSY_RETRY_SECONDS)
                    continue
                if not claimed:
                    return ran
                given_back = self._given_back
                await asyncio.gather(*(self._execute(job) for job in claimed))
                given_back = self._given_back - given_back
                ran += len(claimed) - given_back
                if given_back < len(claimed):
                    busy = 0
                    continue
                # Every job it took found the database busy and was given back: with a real
                # clock they are due again at once, and drain() would take them for ever.
                busy = self._still_busy(busy + 1, busy_retries, ran)
                await asyncio.sleep(BUSY_RETRY_SECONDS)
        finally:
            await self._close_kinds()

    def _still_busy(self, busy: int, retries: int, ran: int) -> int:
        if busy > retries:
            log.error(
                "worker %s gives up: the database stayed busy for %d tries in a row"
                " (%d job(s) ran)",
                self.name,
                busy,
                ran,
            )
            raise DatabaseBusy(f"the database stayed busy for {busy} tries in a row")
        return busy

    async def _close_kinds(self) -> None:
        closers: list[Callable[[], Awaitable[None]]] = []
        for kind in self.kinds.values():
            # Several kinds may share one closer (bound methods of one object compare equal).
            if kind.close is not None and kind.close not in closers:
                closers.append(kind.close)
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("worker %s could not close a job kind's resources", self.name)

    def _caps(self) -> dict[str, int]:
        """How many more jobs of each capped kind may be taken now."""
        return {
            name: max(1, int(self.concurrency * kind.max_share)) - self._running.get(name, 0)
            for name, kind in self.kinds.items()
            if kind.max_share is not None
        }

    def _spawn(self, job: Claimed) -> None:
        task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
        self._tasks.add(task)
        kind = self.kinds.get(job.kind)
        capped = kind is not None and kind.max_share is not None
        if capped:
            self._running[job.kind] = self._running.get(job.kind, 0) + 1

        def _done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if capped:
                self._running[job.kind] -= 1
            if self._wake is not None:
                self._wake.set()  # a slot is free

        task.add_done_callback(_done)

    async def _claim(self, limit: int, caps: Mapping[str, int]) -> list[Claimed]:
        def claim() -> list[Claimed]:
            now = self.clock.now()
            with self.db.read() as session:
                if not anything_due(session, now):
                    return []
            with ahead_of_requests(), self.db.work() as session:
                return claim_due(
                    session, now=now, worker=self.name, policy=self.policy, limit=limit, caps=caps
                )

        self._busy = False
        try:
            claimed = await in_thread(claim)
        except Exception as exc:
            if is_busy(exc):
                # Overload, not an outage: the jobs are there to take as soon as the turn is.
                self._busy = True
                log.debug("worker %s could not take jobs (%s)", self.name, describe(exc))
                return []
            # The database is away (restarting, a network blip): try again after a wait that
            # grows while it stays away; the jobs wait in their table meanwhile.
            self._failures += 1
            if not is_outage(exc):
                log.exception("worker %s could not take jobs", self.name)
            elif self._failures == 1:
                log.warning(
                    "worker %s could not take jobs (%s); retrying", self.name, describe(exc)
                )
            return []
        if self._failures:
            log.info("worker %s takes jobs again (%d failed attempts)", self.name, self._failures)
            self._failures = 0
        return claimed

    def _backoff(self, failures: int) -> float:
        if not failures:
            return self.poll_seconds
        return retry_wait(self.poll_seconds, failures, MAX_BACKOFF_SECONDS)

    async def _execute(self, job: Claimed) -> None:
        kind = self.kinds.get(job.kind)
        settle: Settle | None = None
        error: str | None = None
        code: str | None = None
        permanent = False
        delay: float | None = None
        if kind is None:
            error, permanent = f"no handler for jobs of kind {job.kind!r}", True
        else:
            try:
                settle = await kind.run(job)
            except PermanentFailure as exc:
                error, permanent, code = str(exc) or type(exc).__name__, True, exc.code
            except RetryAfter as exc:
                error, delay = str(exc) or type(exc).__name__, exc.seconds
                log.warning(
                    "job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempt, error
                )
            except Exception as exc:
                if is_busy(exc):
                    # Other writers had the turn: not the job's fault, so not a failed attempt
                    # (nor backed off as from an outage). Given back, it runs again shortly.
                    log.debug("job %s (%s) found the database busy: %s", job.id, job.kind, exc)
                    await self._give_back(job)
                    return
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempt, error
                )
        if error is None:
            self._count(job, await self._record_done(job, settle))
            return
        recorded, outcome = await self._record(job, kind, settle, error, permanent, code, delay)
        if recorded:
            self._count(job, outcome)

    async def _give_back(self, job: Claimed) -> None:
        def give_back() -> None:
            now = self.clock.now()
            at = now + timedelta(seconds=BUSY_RETRY_SECONDS)
            with ahead_of_requests(), self.db.work() as session:
                run_again(session, job.id, worker=self.name, attempt=job.attempt, now=now, at=at)

        failures = 0
        while True:
            try:
                await in_thread(give_back)
            except Exception as exc:
                failures += 1
                wait = self._wait_to_record(job, exc, failures)
                if wait is not None:
                    await asyncio.sleep(wait)
                    continue
                # Left running, it is taken up again when its lease ends: late, not lost.
                log.warning(
                    "worker %s could not give back job %s (%s)", self.name, job.id, describe(exc)
                )
                return
            self._rerun = True
            self._given_back += 1
            return

    async def _record(
        self,
        job: Claimed,
        kind: JobKind | None,
        settle: Settle | None,
        error: str | None,
        permanent: bool,
        code: str | None,
        delay: float | None,
    ) -> tuple[bool, JobStatus | None]:
        """Record one attempt in a transaction of its own; (recorded, its outcome)."""
        failures = 0
        while True:
            try:
                outcome = await in_thread(
                    self._settle, job, kind, settle, error, permanent, code, delay
                )
            except Exception as exc:
                # The work is done (an email went out) but not recorded. While the database is
                # away, keep trying to record it: run again after its lease, it would be done
                # twice. Recording is safe to repeat (only the worker holding the job can).
                failures += 1
                wait = self._wait_to_record(job, exc, failures)
                if wait is not None:
                    await asyncio.sleep(wait)
                    continue
                # Not recorded: the lease runs out and the job is run again, which every
                # handler must tolerate (they check what they already did).
                log.exception("worker %s could not record job %s", self.name, job.id)
                return False, None
            return True, outcome

    @staticmethod
    def _lease_end(job: Claimed) -> float:
        return math.inf if job.leased_until is None else job.leased_until.timestamp()

    def _wait_to_record(self, job: Claimed, exc: Exception, failures: int) -> float | None:
        """How long to wait before recording again after ``exc`` (None: do not try again)."""
        job_id = job.id
        if is_busy(exc):
            # Overload: the turn comes round in milliseconds. Even while stopping: left
            # unrecorded, the job would run again (a push sent twice) when its lease ends.
            # Once the lease has ended, though, another claim may hold the job: the record
            # would be refused, and trying for ever would hang the worker on it.
            if job.leased_until is not None and self.clock.now() >= job.leased_until:
                log.error(
                    "worker %s gives up recording job %s attempt %s: the database stayed"
                    " busy until its lease ended",
                    self.name,
                    job_id,
                    job.attempt,
                )
                return None
            return BUSY_RETRY_SECONDS
        if self._stopping or not is_outage(exc):
            return None
        if failures == 1:
            log.warning(
                "worker %s could not record job %s (%s); retrying",
                self.name,
                job_id,
                describe(exc),
            )
        return self._backoff(failures)

    async def _record_done(self, job: Claimed, settle: Settle | None) -> JobStatus | None:
        """Record a job that succeeded, together with the others that finish meanwhile: one
        transaction for all of them (a job's own writes still commit with its done state, or
        not at all). Idle, a job is recorded at once, alone; under load, while one batch is
        being written the next gathers, so the worker needs the write turn once per batch
        rather than once per job."""
        done = _Done(job, settle, asyncio.get_running_loop().create_future())
        self._done.append(done)
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_batches())
        return await done.recorded

    async def _record_batches(self) -> None:
        while self._done:
            batch, self._done = self._done, []
            recorded = await self._record_batch(batch)
            for done in batch:
                if recorded is None:
                    # One job's writes failed, or the batch could not be recorded: each alone,
                    # so that one job's failure is not the others'.
                    ok, outcome = await self._record(
                        done.job, None, done.settle, None, False, None, None
                    )
                    result = outcome if ok else None
                else:
                    result = JobStatus.done
                if not done.recorded.done():  # its task may have been cancelled meanwhile
                    done.recorded.set_result(result)

    async def _record_batch(self, batch: list[_Done]) -> bool | None:
        if len(batch) == 1:
            return None  # alone: recorded the ordinary way
        failures = 0
        while True:
            try:
                await in_thread(self._settle_done, batch)
                return True
            except Exception as exc:
                failures += 1
                wait = self._wait_to_record(
                    min((done.job for done in batch), key=self._lease_end), exc, failures
                )
                if wait is None:
                    return None
                await asyncio.sleep(wait)

    def _settle_done(self, batch: list[_Done]) -> None:
        now = self.clock.now()
        with ahead_of_requests(), self.db.work() as session:
            held = finish_many(
                session,
                {done.job.id: done.job.attempt for done in batch},
                worker=self.name,
                now=now,
            )
            for done in batch:
                if done.settle is not None and done.job.id in held:
                    done.settle(session, now)

    def _count(self, job: Claimed, outcome: JobStatus | None) -> None:
        if outcome is JobStatus.done:
            self.stats.done += 1
            self.stats.by_kind[job.kind] = self.stats.by_kind.get(job.kind, 0) + 1
        elif outcome is JobStatus.failed:
            self.stats.failed += 1
        elif outcome is JobStatus.queued:
            self.stats.retried += 1

    def _settle(
        self,
        job: Claimed,
        kind: JobKind | None,
        settle: Settle | None,
        error: str | None,
        permanent: bool,
        code: str | None = None,
        delay: float | None = None,
    ) -> JobStatus | None:
        """Record the attempt; its outcome once committed (None: the job was not ours)."""
        now = self.clock.now()
        with ahead_of_requests(), self.db.work() as session:
            if error is None:
                if (
                    finish(session, job.id, worker=self.name, attempt=job.attempt, now=now)
                    and settle is not None
                ):
                    settle(session, now)
                return JobStatus.done
            status = retry_or_fail(
                session,
                job.id,
                error,
                worker=self.name,
                attempt=job.attempt,
                now=now,
                policy=self.policy,
                permanent=permanent,
                delay=None if delay is None else timedelta(seconds=delay),
            )
            if status is None:
                return None
            final = status is JobStatus.failed
            if final:
                log.error("job %s (%s) failed for good: %s", job.id, job.kind, error)
            if kind is not None and kind.on_failure is not None:
                kind.on_failure(session, job, Failure(error, final, code), now)
            return status

    async def _housekeeping(self, *, force: bool = False) -> None:
        if self._failures and not force:
            return  # the database is away: the jobs come first when it returns
        now = time.monotonic()
        for timer in self._timers:
            if not force and now < timer.next_at:
                continue
            timer.next_at = now + timer.task.every_seconds
            try:
                # Housekeeping writes as an ordinary writer: a timer that loops in the
                # worker's line would keep requests from their turn.
                await in_thread(timer.task.run, self.clock.now())
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("worker %s: %s failed", self.name, timer.task.name)
                else:
                    log.warning(
                        "worker %s: %s failed (%s)", self.name, timer.task.name, describe(exc)
                    )

"""Queueing, taking and settling jobs: the only code that writes the job queue."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from jobchat.config import Settings
from jobchat.db.engine import mark_jobs_written
from jobchat.jobqueue.models import UNFINISHED, JobStatus, QueuedJob

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float
    lease_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.job_max_attempts,
            base_seconds=settings.job_backoff_seconds,
            max_seconds=settings.job_backoff_max_seconds,
            lease_seconds=settings.job_lease_seconds,
        )

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff after the n-th failed attempt, with jitter so that the jobs that
        failed together (a mail server outage) do not all come back in the same second."""
        seconds = min(self.max_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return timedelta(seconds=seconds * random.uniform(0.8, 1.0))  # noqa: S311 (not crypto)


@dataclass(frozen=True)
class Claimed:
    """A job a worker has taken; ``attempt`` counts from 1. The attempt is the claim's fencing
    token: a worker name alone does not tell this claim from a later one by the same worker
    after the lease ran out. ``leased_until``: when another claim may take the job (None: not
    known, as for a job built by hand)."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    leased_until: datetime | None = None


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    run_at: datetime | None = None,
) -> QueuedJob:
    """Queue a job in the caller's transaction: it exists exactly when the change that caused
    it was committed."""
    job = QueuedJob(
        kind=kind,
        payload=payload,
        status=JobStatus.queued,
        attempts=0,
        run_at=run_at or now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    mark_jobs_written(session)
    return job


def claim_due(
    session: Session,
    *,
    now: datetime,
    worker: str,
    policy: RetryPolicy,
    limit: int,
    caps: Mapping[str, int] | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due jobs, oldest due first, leasing them to ``worker``; of a kind
    in ``caps``, at most that many (the rest stay queued for a later claim, and the jobs of
    other kinds behind them are taken now).

    A running job whose lease ran out belongs to a worker that died (or hung): it is due
    again. On PostgreSQL, SKIP LOCKED lets several workers take different jobs at once; on
    SQLite the write transaction (BEGIN IMMEDIATE) already lets only one taker in.
    """
    due = select(QueuedJob).where(UNFINISHED, QueuedJob.run_at <= now)
    caps = caps or {}
    # One query for the uncapped kinds, one per capped kind with room: the oldest of them all.
    takes = [(due.where(QueuedJob.kind.not_in(list(caps))) if caps else due, limit)]
    takes += [(due.where(QueuedJob.kind == kind), room) for kind, room in caps.items() if room > 0]
    found: list[QueuedJob] = []
    for query, room in takes:
        query = query.order_by(QueuedJob.run_at, QueuedJob.id).limit(min(room, limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        found += session.scalars(query)
    found.sort(key=lambda job: (job.run_at, job.id))
    claimed = []
    for job in found[:limit]:
        job.status = JobStatus.running
        job.locked_by = worker
        job.attempts += 1
        job.run_at = now + timedelta(seconds=policy.lease_seconds)
        job.updated_at = now
        claimed.append(Claimed(job.id, job.kind, dict(job.payload), job.attempts, job.run_at))
    return claimed


def _held(session: Session, job_id: int, worker: str, attempt: int) -> QueuedJob | None:
    """The job, if ``worker`` still holds it for ``attempt``: after a lease ran out another
    claim (another worker's, or this worker's own) may have it."""
    job = session.get(QueuedJob, job_id, with_for_update=True)
    if (
        job is None
        or job.status != JobStatus.running
        or job.locked_by != worker
        or job.attempts != attempt
    ):
        return None
    return job


def finish(session: Session, job_id: int, *, worker: str, attempt: int, now: datetime) -> bool:
    job = _held(session, job_id, worker, attempt)
    if job is None:
        return False
    job.status = JobStatus.done
    job.locked_by = None
    job.last_error = None
    job.finished_at = now
    job.updated_at = now
    return True


def finish_many(
    session: Session, attempts: dict[int, int], *, worker: str, now: datetime
) -> set[int]:
    """Mark done, in one statement, those of the jobs (id: attempt) that ``worker`` still
    holds for that attempt; returns their ids (what each job settles is to be written for
    those only)."""
    if not attempts:
        return set()
    rows = session.execute(
        update(QueuedJob)
        .where(
            or_(
                *(
                    and_(QueuedJob.id == job_id, QueuedJob.attempts == attempt)
                    for job_id, attempt in attempts.items()
                )
            ),
            QueuedJob.status == JobStatus.running,
            QueuedJob.locked_by == worker,
        )
        .values(
            status=JobStatus.done, locked_by=None, last_error=None, finished_at=now, updated_at=now
        )
        .returning(QueuedJob.id)
        .execution_options(synchronize_session=False)
    )
    return {int(job_id) for job_id in rows.scalars()}


def retry_or_fail(
    session: Session,
    job_id: int,
    error: str,
    *,
    worker: str,
    attempt: int,
    now: datetime,
    policy: RetryPolicy,
    permanent: bool = False,
    delay: timedelta | None = None,
) -> JobStatus | None:
    """Record a failed attempt: queued again after a backoff (or ``delay``, when the other side
    said how long to wait), or failed for good when the error is permanent or the attempts are
    used up. None when the worker no longer held the job for that attempt."""
    job = _held(session, job_id, worker, attempt)
    if job is None:
        return None
    job.last_error = error[:MAX_ERROR_CHARS]
    job.locked_by = None
    job.updated_at = now
    if permanent or job.attempts >= policy.max_attempts:
        job.status = JobStatus.failed
        job.finished_at = now
    else:
        job.status = JobStatus.queued
        job.run_at = now + (delay if delay is not None else policy.delay(job.attempts))
    return JobStatus(job.status)


def run_again(
    session: Session, job_id: int, *, worker: str, attempt: int, now: datetime, at: datetime
) -> bool:
    """Give back a job whose run found the database busy, to run again at ``at``: not a failed
    attempt (the attempt is not counted, nothing is backed off), since overload is not the
    job's fault and a job turned away by it often enough would otherwise fail for good. False
    when the worker no longer held the job for that attempt."""
    job = _held(session, job_id, worker, attempt)
    if job is None:
        return False
    job.status = JobStatus.queued
    job.locked_by = None
    job.attempts = attempt - 1
    job.run_at = at
    job.updated_at = now
    return True


def bring_forward(session: Session, job_ids: Sequence[int], now: datetime) -> int:
    """Queued jobs among ``job_ids`` that wait for a later time run now (the reason they waited
    is gone); running and finished ones are left alone. Returns how many."""
    if not job_ids:
        return 0
    result = session.execute(
        update(QueuedJob)
        .where(
            QueuedJob.id.in_(list(job_ids)),
            QueuedJob.status == JobStatus.queued,
            QueuedJob.run_at > now,
        )
        .values(run_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    moved = int(result.rowcount)  # type: ignore[attr-defined]
    if moved:
        mark_jobs_written(session)
    return moved


def prune_done(session: Session, *, before: datetime) -> int:
    """Forget finished jobs; failed ones stay until someone looks at them."""
    result = session.execute(
        delete(QueuedJob).where(QueuedJob.status == JobStatus.done, QueuedJob.finished_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

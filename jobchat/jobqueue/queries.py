"""Read-only questions about the job queue."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobchat.jobqueue.models import UNFINISHED, QueuedJob


def anything_due(session: Session, now: datetime) -> bool:
    """A cheap look (the partial index) before a worker opens a write transaction to claim."""
    first = session.scalar(select(func.min(QueuedJob.run_at)).where(UNFINISHED))
    return first is not None and first <= now


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(QueuedJob.status, func.count()).group_by(QueuedJob.status))
    return {str(status): int(count) for status, count in rows}


def counts_by_kind_and_status(
    session: Session, statuses: Iterable[str]
) -> list[tuple[str, str, int]]:
    """(kind, status, how many) for jobs in ``statuses``: what a metrics scrape shows."""
    rows = session.execute(
        select(QueuedJob.kind, QueuedJob.status, func.count())
        .where(QueuedJob.status.in_(list(statuses)))
        .group_by(QueuedJob.kind, QueuedJob.status)
    )
    return [(str(kind), str(status), int(count)) for kind, status, count in rows]


def jobs_page(
    session: Session, *, status: str | None, kind: str | None, before: int | None, limit: int
) -> list[QueuedJob]:
    """Newest first: what an operator looks at when something did not go out."""
    query = select(QueuedJob).order_by(QueuedJob.id.desc()).limit(limit)
    if status is not None:
        query = query.where(QueuedJob.status == status)
    if kind is not None:
        query = query.where(QueuedJob.kind == kind)
    if before is not None:
        query = query.where(QueuedJob.id < before)
    return list(session.scalars(query))

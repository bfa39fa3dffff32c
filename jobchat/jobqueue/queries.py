"""Read-only questions about the job queue."""

from __future__ import annotations

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

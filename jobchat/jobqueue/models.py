"""The job queue table. Named job_queue: "jobs" are the ATS's job openings."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime


class JobStatus(enum.StrEnum):
    queued = "queued"  # waiting for run_at
    running = "running"  # taken by a worker until locked_until
    done = "done"
    failed = "failed"  # gave up: last_error says why


# Jobs a worker may have to run. Written as literal SQL, the same in the partial index and in
# the queries: SQLite uses a partial index only for a query whose WHERE has the same literals.
UNFINISHED = text("status IN ('queued', 'running')")


class QueuedJob(Base):
    __tablename__ = "job_queue"
    __table_args__ = (
        # Workers look for due work: queued by run_at, and running ones whose lease ran out.
        Index(
            "ix_job_queue_due",
            "run_at",
            sqlite_where=UNFINISHED,
            postgresql_where=UNFINISHED,
        ),
        Index("ix_job_queue_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it may run next; for a running job, when its lease ends and another worker may retry.
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

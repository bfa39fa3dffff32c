"""The job queue as the integration sees it: what is waiting, what failed and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from jobchat.auth.deps import Integration, State
from jobchat.http_errors import error_responses
from jobchat.inputs import MAX_ID
from jobchat.jobqueue.models import QueuedJob
from jobchat.jobqueue.queries import counts_by_status, jobs_page

router = APIRouter(
    prefix="/api/v1",
    tags=["integration"],
    dependencies=[Integration],
    responses=error_responses(401, 403),
)

Status = Literal["queued", "running", "done", "failed"]


class BackgroundJobOut(BaseModel):
    id: int
    kind: str = Field(description="email.delivery, email.notification, email.closed_notice, ...")
    status: Status
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed.")
    payload: dict[str, Any] = Field(description="What the job is about (internal ids).")
    run_at: datetime = Field(description="When it runs next (queued) or its lease ends (running).")
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: QueuedJob) -> BackgroundJobOut:
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            attempts=job.attempts,
            last_error=job.last_error,
            payload=job.payload,
            run_at=job.run_at,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


class BackgroundJobPage(BaseModel):
    items: list[BackgroundJobOut]
    counts: dict[str, int] = Field(description="How many jobs there are in each status.")
    next_cursor: int | None = Field(description="Pass as `before` for older jobs.")


@router.get("/background-jobs", response_model=BackgroundJobPage, responses=error_responses(422))
def list_jobs(
    state: State,
    status: Status | None = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BackgroundJobPage:
    """The background jobs (outbound email and notifications), newest first. A job that kept
    failing is `failed`, with the reason in `last_error`; finished ones are kept a week."""
    with state.db.read() as session:
        page = jobs_page(session, status=status, kind=kind, before=before, limit=limit + 1)
        counts = counts_by_status(session)
    more = len(page) > limit
    page = page[:limit]
    return BackgroundJobPage(
        items=[BackgroundJobOut.of(job) for job in page],
        counts=counts,
        next_cursor=page[-1].id if more and page else None,
    )

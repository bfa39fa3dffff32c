"""Erasing a candidate while work about them is under way: a webhook event about them in flight
to the ATS (the request sent, the answer not yet back) and the next one waiting behind it. The
attempt in flight finds nothing to record when it settles, the waiting one is never sent, and
nothing of either is left in the database; another candidate's events go on."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.webhooks.actions import DELIVER_JOB
from jobchat.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.mail_support import drain, worker_for
from tests.support import World, body, start
from tests.test_webhooks_delivery import bodies, hook
from tests.webhook_receiver import Received, Receiver, receiver

__all__ = ["receiver"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The erasure runs while the ATS is answering the event in flight, and the receiver answers
    # nothing else meanwhile: on a loaded machine an erasure on PostgreSQL took 7 s, past a 5 s
    # timeout, and the other candidate's event, waiting for its answer, was queued again (a CI
    # run of issue 20's seventh stop).
    return settings.model_copy(
        update={"webhooks_allow_insecure": True, "webhooks_timeout_seconds": 30}
    )


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


def _count(db: Database, model: Any) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_an_erasure_while_an_event_about_them_is_in_flight(
    world: World, receiver: Receiver, worker: Worker, db: Database
) -> None:
    hook(world, receiver, "ats")
    theirs = start(world["emp_team"], "application", application="app1")
    other = start(world["emp_team"], "application", application="app2")
    erased: list[dict[str, Any]] = []
    once = threading.Lock()

    def erase_while_answering(received: Received) -> None:
        # The ATS is handling the first event about Carla when her erasure comes in.
        if received.data["message"]["body"] == "first" and once.acquire(blocking=False):
            answer = world.api.integration.post("/api/v1/candidates/cand/erase")
            erased.append(body(answer, 200))

    receiver.on_request = erase_while_answering
    body(world["cand"].send(theirs, "first"), 201)
    body(world["cand"].send(theirs, "second"), 201)
    body(world["cand2"].send(other, "from Dan"), 201)
    drain(worker)
    drain(worker)

    assert erased and erased[0]["erased"]["webhook_events"] == 2
    # The one in flight arrived (it was sent before the erasure); the one behind it never.
    assert sorted(bodies(receiver.to("ats"))) == ["first", "from Dan"]
    assert not receiver.rejected
    # Nothing about her is left: neither event, nor a log row of the attempt that was in flight
    # (its settling found the event gone), nor a job still to run.
    with db.read() as s:
        left = s.scalars(select(WebhookDelivery.payload)).all()
        jobs = s.scalars(select(QueuedJob.status).where(QueuedJob.kind == DELIVER_JOB)).all()
    assert [p["data"]["message"]["body"] for p in left] == ["from Dan"]
    assert _count(db, WebhookAttempt) == 1
    assert set(jobs) == {JobStatus.done}

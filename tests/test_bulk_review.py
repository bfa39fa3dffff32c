"""Bulk messages, the second review's cases: a retry replays whatever happened since (the clock
moved, send_at passed, the template was edited); a job that fails for good ends its bulk; one
recipient whose send breaks is skipped alone; what would skip everyone is refused up front; an
author has a few bulks going at once at most."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.conversations.actions import do_start_conversation
from jobchat.db.engine import Database
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.scheduling.bulk import actions as bulk_actions
from jobchat.scheduling.bulk.actions import BULK_JOB
from jobchat.scheduling.bulk.models import BulkMessage
from jobchat.templates.models import Template
from tests.mail_support import drain, worker_for
from tests.support import Api, World, assert_error, body, build_world
from tests.test_bulk_api import BULK, post, template, thread_of

CAP = 2


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def capped(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[World]:
    """An author may have CAP bulk messages queued or sending at once."""
    app = create_app(
        settings.model_copy(update={"max_active_bulks_per_user": CAP}), db=db, clock=clock
    )
    with TestClient(app) as client:
        yield build_world(Api(client))


def replayed(world: World, request: dict[str, Any], first: dict[str, Any]) -> None:
    again = world["emp_team"].post(BULK, {"channel": "app", **request})
    assert again.status_code == 202, again.text
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first["id"]


def test_a_retry_without_send_at_replays_though_the_clock_moved(
    world: World, worker: Worker, clock: FrozenClock
) -> None:
    request = {"applications": ["app1"], "body": "Once", "idempotency_key": "k-now"}
    first = post(world["emp_team"], **request)
    clock.advance(minutes=5)
    replayed(world, request, first)
    drain(worker)
    assert [m["body"] for m in thread_of(world["cand"], "app1")] == ["Once"]


def test_a_retry_after_its_send_at_passed_replays_rather_than_refuses(
    world: World, worker: Worker, clock: FrozenClock
) -> None:
    at = (clock.now() + timedelta(hours=1)).isoformat()
    request = {"applications": ["app1"], "body": "Later", "send_at": at, "idempotency_key": "k"}
    first = post(world["emp_team"], **request)
    clock.advance(hours=2)
    replayed(world, request, first)
    drain(worker)
    assert [m["body"] for m in thread_of(world["cand"], "app1")] == ["Later"]


def test_a_retry_after_its_template_was_edited_replays(world: World, db: Database) -> None:
    tid = template(db, "emp_team", "Hi {{candidate.first_name}}")
    request = {"applications": ["app1"], "template": tid, "idempotency_key": "k-tpl"}
    first = post(world["emp_team"], **request)
    with db.write() as session:
        session.execute(update(Template).where(Template.id == tid).values(body="Edited"))
    replayed(world, request, first)
    # Other words under the same key are still a conflict.
    other = world["emp_team"].post(BULK, {"channel": "app", **request, "template": None})
    assert_error(other, 409, "idempotency_key_reused")


def test_a_bulk_whose_job_fails_for_good_ends_with_the_rest_skipped(
    world: World, worker: Worker, db: Database, settings: Settings
) -> None:
    tess = world["emp_team"]
    queued = post(tess, applications=["app1", "app2"], body="Hi")
    # Something the runner cannot survive (a channel it does not know), on its last attempt.
    with db.write() as session:
        session.execute(update(BulkMessage).values(channel="fax"))
        session.execute(
            update(QueuedJob)
            .where(QueuedJob.kind == BULK_JOB)
            .values(attempts=settings.job_max_attempts - 1)
        )
    drain(worker)
    with db.write() as session:
        job = session.scalars(select(QueuedJob).where(QueuedJob.kind == BULK_JOB)).one()
        assert job.status == JobStatus.failed
        session.execute(update(BulkMessage).values(channel="app"))
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert (done["status"], done["sent"], done["pending"]) == ("done", 0, 0)
    assert done["finished_at"] is not None
    assert [(s["application"], s["code"]) for s in done["skipped"]] == [
        ("app1", "send_failed"),
        ("app2", "send_failed"),
    ]
    assert done["skipped"][0]["reason"] == (
        "It could not be sent because of a problem on our side; please send it again."
    )


def test_one_recipient_whose_send_breaks_is_skipped_and_the_rest_go(
    world: World, worker: Worker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = do_start_conversation
    broke: list[bool] = []

    def first_one_breaks(session: Any, **given: Any) -> Any:
        # A fault no check foresaw, for the first recipient only, on every attempt.
        if given["context"].application.ext_id == "app1":
            broke.append(True)
            raise RuntimeError("poison")
        return real(session, **given)

    monkeypatch.setattr(bulk_actions, "do_start_conversation", first_one_breaks)
    tess = world["emp_team"]
    with caplog.at_level(logging.ERROR):
        queued = post(tess, applications=["app1", "app2"], body="Hi {{candidate.first_name}}")
        drain(worker)
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert (done["status"], done["sent"]) == ("done", 1)
    assert [(s["application"], s["code"]) for s in done["skipped"]] == [("app1", "send_failed")]
    assert [m["body"] for m in thread_of(world["cand2"], "app2")] == ["Hi Dan"]
    assert thread_of(world["cand"], "app1") == []
    assert broke == [True]
    assert any(r.exc_info and "poison" in str(r.exc_info[1]) for r in caplog.records)


def test_what_would_skip_everyone_is_refused_up_front(world: World, db: Database) -> None:
    tess = world["emp_team"]
    long_subject = "S" * 301
    assert_error(
        tess.post(
            BULK,
            {"applications": ["app1"], "body": "x", "subject": long_subject, "channel": "email"},
        ),
        422,
        fields={"subject"},
    )
    with db.read() as session:
        assert session.scalars(select(QueuedJob)).all() == []
    # 300 is still fine.
    post(tess, applications=["app1"], body="x", subject="S" * 300, channel="email")


def test_an_author_has_a_few_bulks_going_at_once_at_most(capped: World, clock: FrozenClock) -> None:
    tess = capped["emp_team"]
    at = (clock.now() + timedelta(hours=1)).isoformat()
    first = post(tess, applications=["app1"], body="1", send_at=at, idempotency_key="one")
    post(tess, applications=["app2"], body="2", send_at=at)
    third = tess.post(BULK, {"applications": ["app1"], "body": "3", "channel": "app"})
    assert_error(third, 409, "too_many_bulk_messages")
    # A retry of one already queued is still answered.
    again = {"applications": ["app1"], "body": "1", "send_at": at, "idempotency_key": "one"}
    replayed(capped, again, first)
    # Others' count is their own.
    post(capped["emp_admin"], applications=["app1"], body="mine")
    # One that is done makes room.
    worker = worker_for(capped.api.client.app)  # type: ignore[arg-type]
    clock.advance(hours=1)
    drain(worker)
    post(tess, applications=["app1"], body="3")

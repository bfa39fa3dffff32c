"""Webhook deliveries as an ATS's endpoint on loopback receives them, every request's
signature checked by the ``standardwebhooks`` package: the Standard Webhooks headers, rotation
(both secrets valid for a day, then only the new), one conversation's events in order, an
endpoint down for a while getting everything once when back, retries with backoff on non-2xx
answers and timeouts, disabling after three days of failure, the delivery log, and erasure."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from jobchat.webhooks.actions import forget
from jobchat.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.mail_support import drain, worker_for
from tests.support import World, body, start
from tests.webhook_receiver import Receiver, receiver

__all__ = ["receiver"]

HOOKS = "/api/v1/webhooks"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhooks_allow_insecure": True,
            "webhooks_timeout_seconds": 0.3,
            # Backoff from a minute up to four hours: a day of retries in a dozen steps.
            "job_backoff_seconds": 60,
            "job_backoff_max_seconds": 4 * 3600,
        }
    )


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def conv(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def hook(
    world: World, receiver: Receiver, name: str, events: list[str] | None = None
) -> dict[str, Any]:
    made = body(
        world.api.integration.post(
            HOOKS, {"url": receiver.url(name), "events": events or ["message.created"]}
        ),
        201,
    )
    receiver.expect(name, made["secret"])
    return made


def log(world: World, webhook_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body(
        world.api.integration.get(f"{HOOKS}/{webhook_id}/deliveries"), 200
    )["items"]
    return items


def listed(world: World, webhook_id: int) -> dict[str, Any]:
    [found] = [
        w for w in body(world.api.integration.get(HOOKS), 200)["items"] if w["id"] == webhook_id
    ]
    return dict(found)


def bodies(received: list[Any]) -> list[str]:
    return [r.data["message"]["body"] for r in received]


def rows(db: Database) -> tuple[int, int]:
    with db.read() as session:
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
        attempts = session.scalar(select(func.count()).select_from(WebhookAttempt)) or 0
        return deliveries, attempts


def test_an_event_arrives_signed_as_standard_webhooks_says(
    world: World, conv: int, receiver: Receiver, worker: Worker
) -> None:
    hook(world, receiver, "ats")
    sent = body(world["cand"].send(conv, "I can start in May."), 201)
    drain(worker)
    [got] = receiver.delivered("ats")
    assert not receiver.rejected
    assert got.headers["content-type"] == "application/json"
    assert got.msg_id.startswith("msg_")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert got.headers["webhook-signature"].startswith("v1,")
    assert " " not in got.headers["webhook-signature"]  # one secret, one signature
    assert got.type == "message.created"
    assert got.data["message"]["id"] == sent["id"]
    assert got.data["message"]["body"] == "I can start in May."


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(
    world: World, conv: int, receiver: Receiver, worker: Worker, clock: FrozenClock
) -> None:
    made = hook(world, receiver, "ats")
    old = made["secret"]
    new = body(world.api.integration.post(f"{HOOKS}/{made['id']}/rotate-secret"), 200)["secret"]
    # Each of the two secrets must verify the request on its own.
    receiver.expect("ats", old, new)
    body(world["cand"].send(conv, "one"), 201)
    drain(worker)
    [first] = receiver.delivered("ats")
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    assert not receiver.rejected

    clock.advance(hours=24, seconds=1)
    receiver.expect("ats", new)
    body(world["cand"].send(conv, "two"), 201)
    drain(worker)
    assert bodies(receiver.delivered("ats")) == ["one", "two"]
    assert " " not in receiver.delivered("ats")[1].headers["webhook-signature"]
    assert not receiver.rejected
    # The old secret no longer verifies anything.
    receiver.expect("ats", old)
    body(world["cand"].send(conv, "three"), 201)
    drain(worker)
    assert receiver.rejected and "does not verify" in receiver.rejected[0]


def test_down_for_a_while_then_everything_once_in_order(
    world: World, receiver: Receiver, worker: Worker, clock: FrozenClock, db: Database
) -> None:
    made = hook(world, receiver, "ats")
    a = start(world["emp_team"], "application", application="app1")
    b = start(world["emp_team"], "case", application="app2")
    receiver.stop()
    for i in range(4):
        body(world["emp_team"].send(a, f"a{i}"), 201)
        body(world["emp_team"].send(b, f"b{i}"), 201)
        clock.advance(seconds=1)
        drain(worker)
    # Only each conversation's first event was tried: the others wait their turn.
    tried = log(world, made["id"])
    assert {t["status_code"] for t in tried} == {None}
    assert {t["error"] for t in tried} == {"connection failed"}
    assert len({t["event_id"] for t in tried}) == 2
    for _ in range(3):
        clock.advance(minutes=30)
        drain(worker)
    assert receiver.to("ats") == []
    receiver.start()
    clock.advance(hours=4)
    drain(worker)
    got = receiver.delivered("ats")
    assert len(got) == 8 and len(receiver.to("ats")) == 8
    assert len({g.msg_id for g in got}) == 8  # each event once
    assert [x for x in bodies(got) if x.startswith("a")] == ["a0", "a1", "a2", "a3"]
    assert [x for x in bodies(got) if x.startswith("b")] == ["b0", "b1", "b2", "b3"]
    assert not receiver.rejected
    # Nothing more is sent, however long one waits.
    clock.advance(days=2)
    drain(worker)
    assert len(receiver.to("ats")) == 8
    assert listed(world, made["id"])["failing_since"] is None


def test_non_2xx_and_timeouts_are_retried_with_backoff_under_the_same_id(
    world: World, conv: int, receiver: Receiver, worker: Worker, clock: FrozenClock
) -> None:
    made = hook(world, receiver, "ats")
    receiver.answer("ats", [500, 404, "hang"])
    body(world["cand"].send(conv, "hello"), 201)
    drain(worker)
    assert [r.status for r in receiver.to("ats")] == [500]
    # Not before its backoff (a minute, less jitter), whatever the worker does meanwhile.
    clock.advance(seconds=30)
    drain(worker)
    assert len(receiver.to("ats")) == 1
    clock.advance(seconds=31)
    drain(worker)
    assert [r.status for r in receiver.to("ats")] == [500, 404]
    # The next wait is longer: about two minutes.
    clock.advance(seconds=61)
    drain(worker)
    assert len(receiver.to("ats")) == 2
    clock.advance(seconds=60)
    drain(worker)  # the hang: given up after the timeout
    clock.advance(minutes=5)
    drain(worker)
    arrived = receiver.to("ats")
    assert [r.status for r in arrived][:2] == [500, 404]
    assert len(receiver.delivered("ats")) == 1
    assert len({r.msg_id for r in arrived}) == 1
    attempts = log(world, made["id"])  # newest first
    assert [a["status_code"] for a in attempts] == [200, None, 404, 500]
    assert attempts[1]["error"] == "timed out"
    assert attempts[2]["error"] == "the endpoint answered 404"
    assert [a["delivery_status"] for a in attempts] == ["delivered"] * 4
    assert {a["event_type"] for a in attempts} == {"message.created"}
    assert all(a["duration_ms"] >= 0 for a in attempts)
    assert attempts[1]["duration_ms"] >= 250


def test_failing_for_three_days_disables_it_and_its_pending_events_stop(
    world: World, conv: int, receiver: Receiver, worker: Worker, clock: FrozenClock, db: Database
) -> None:
    made = hook(world, receiver, "ats")
    receiver.answer("ats", [503] * 1000)
    started = clock.now()
    body(world["cand"].send(conv, "day 0"), 201)
    other = start(world["emp_team"], "case", application="app2")
    day = 0
    while listed(world, made["id"])["enabled"]:
        drain(worker)
        clock.advance(hours=2)
        if clock.now() - started >= timedelta(days=day + 1):
            day += 1
            body(world["cand"].send(conv, f"day {day}"), 201)
            body(world["emp_team"].send(other, f"other {day}"), 201)
        assert day <= 4
    shown = listed(world, made["id"])
    assert shown["enabled"] is False
    assert shown["disabled_reason"] and "503" in shown["disabled_reason"]
    assert shown["failing_since"] is not None
    failing_for = clock.now() - started
    # At the first attempt after three days (attempts are up to 4 hours apart, here).
    assert timedelta(days=3) <= failing_for <= timedelta(days=3, hours=6)
    # The first event was given up after a day, not retried for ever.
    first = [r for r in receiver.to("ats") if r.data["message"]["body"] == "day 0"]
    assert 5 < len(first) < 30
    # Nothing more goes out: neither what was pending nor what happens next.
    count = len(receiver.to("ats"))
    body(world["cand"].send(conv, "later"), 201)
    for _ in range(3):
        clock.advance(hours=5)
        drain(worker)
    assert len(receiver.to("ats")) == count
    # Enabled again, it takes new events.
    receiver.answer("ats", [])
    receiver._script.clear()
    enabled = body(world.api.integration.post(f"{HOOKS}/{made['id']}/enable"), 200)
    assert enabled["enabled"] is True and enabled["failing_since"] is None
    body(world["cand"].send(conv, "back"), 201)
    drain(worker)
    assert bodies(receiver.delivered("ats")) == ["back"]


def test_nothing_is_written_when_no_webhook_takes_the_event(
    world: World, conv: int, receiver: Receiver, worker: Worker, db: Database
) -> None:
    body(world["cand"].send(conv, "no hooks yet"), 201)
    hook(world, receiver, "ends", events=["conversation.ended"])
    body(world["cand"].send(conv, "a hook, but not for this"), 201)
    assert rows(db) == (0, 0)
    made = hook(world, receiver, "gone")
    assert world.api.integration.delete(f"{HOOKS}/{made['id']}").status_code == 204
    body(world["cand"].send(conv, "deleted hook"), 201)
    drain(worker)
    assert rows(db) == (0, 0)
    assert receiver.requests == []


def test_a_deleted_webhook_gets_nothing_more(
    world: World, conv: int, receiver: Receiver, worker: Worker, db: Database
) -> None:
    made = hook(world, receiver, "ats")
    body(world["cand"].send(conv, "queued"), 201)
    assert rows(db) == (1, 0)
    assert world.api.integration.delete(f"{HOOKS}/{made['id']}").status_code == 204
    assert rows(db) == (0, 0)
    drain(worker)
    assert receiver.requests == []


def test_forget_deletes_what_was_about_them_and_the_lane_moves_on(
    world: World,
    conv: int,
    receiver: Receiver,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    hook(world, receiver, "ats")
    receiver.answer("ats", [500])
    first = body(world["cand"].send(conv, "erase me"), 201)
    drain(worker)  # tried once, failed: waiting for its retry
    body(world["emp_team"].send(conv, "keep me"), 201)
    assert rows(db) == (2, 1)
    with db.work() as session:
        assert forget(session, message_ids=[first["id"]]) == 2  # the delivery and its attempt
    assert rows(db) == (1, 0)
    drain(worker)  # the next one's turn, at once
    assert bodies(receiver.delivered("ats")) == ["keep me"]
    with db.work() as session:
        gone = forget(session, conversation_ids=[conv], candidate_ids=[], message_ids=[])
    assert gone == 2 and rows(db) == (0, 0)


def test_forget_by_candidate_reaches_every_event_about_them(
    world: World, conv: int, receiver: Receiver, db: Database, client: TestClient
) -> None:
    hook(world, receiver, "ats", events=["message.created", "candidate.sms_consent"])
    body(world["cand"].send(conv, "mine"), 201)
    world.api.candidate("cand", "Carla Candidate", phone="+14155550123", sms_consent=False)
    other = start(world["emp_team"], "case", application="app2")
    body(world["emp_team"].send(other, "not about carla"), 201)
    assert rows(db) == (3, 0)
    with db.read() as session:
        carla = session.scalar(
            select(WebhookDelivery.candidate_id).where(
                WebhookDelivery.type == "candidate.sms_consent"
            )
        )
    assert carla is not None
    with db.work() as session:
        assert forget(session, candidate_ids=[carla]) == 2
    assert rows(db) == (1, 0)


def test_a_second_job_for_one_delivery_sends_nothing(
    world: World, conv: int, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    """Only the job a delivery names may send it: a copy (a lease that ran out, a lane kicked
    twice) finds another id and does nothing."""
    from jobchat.jobqueue.actions import enqueue
    from jobchat.webhooks.actions import DELIVER_JOB

    hook(world, receiver, "ats")
    body(world["cand"].send(conv, "once"), 201)
    with db.work() as session:
        msg_id = session.scalars(select(WebhookDelivery.msg_id)).one()
        enqueue(session, DELIVER_JOB, {"msg_id": msg_id}, now=clock.now())
    drain(worker)
    clock.advance(days=1)
    drain(worker)
    assert bodies(receiver.to("ats")) == ["once"]


def test_the_log_and_settled_events_are_pruned_after_two_weeks(
    world: World, conv: int, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    made = hook(world, receiver, "ats")
    receiver.answer("ats", [500])
    body(world["cand"].send(conv, "old"), 201)
    drain(worker)
    clock.advance(minutes=2)
    drain(worker)
    assert len(log(world, made["id"])) == 2 and rows(db) == (1, 2)
    clock.advance(days=13)
    body(world["cand"].send(conv, "recent"), 201)
    drain(worker)
    assert rows(db) == (2, 3)
    clock.advance(days=1, hours=1)
    drain(worker)  # the worker's housekeeping prunes
    assert rows(db) == (1, 1)
    [left] = log(world, made["id"])
    assert left["delivery_status"] == "delivered"

"""Pushes as they arrive at a browser's push service: encrypted, signed, with the payload the
contract names, nothing for what was deleted or read meanwhile, retried on 429/5xx (after
Retry-After), the subscription dropped on 410, failed for good on another 4xx; and the guard
that keeps pushes off loopback and private addresses."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import RetryPolicy
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.push.keys import VapidKeyInvalid
from jobchat.push.models import PushSubscription
from jobchat.push.queue import PUSH_JOB, enqueue_push
from jobchat.push.sender import MAX_RETRY_AFTER_SECONDS, Pusher, retry_after_seconds
from tests.mail_support import drain, worker_for
from tests.push_service import Browser, PushService, b64url
from tests.support import As, World, body, start


@pytest.fixture(scope="module")
def service() -> Iterator[PushService]:
    server = PushService().start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"push_allow_insecure": True, "email_from": "Acme Hiring <hiring@example.com>"}
    )


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def conv(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def subscribe(who: As, service: PushService, name: str) -> tuple[Browser, int]:
    key = body(who.get("/api/v1/push/key"), 200)["public_key"]
    browser = service.subscription(name, server_key=key)
    created = body(who.post("/api/v1/push/subscriptions", json=browser.json()), 201)
    return browser, int(created["id"])


def push(db: Database, clock: FrozenClock, subscription_id: int, message_id: int) -> None:
    with db.work() as session:
        enqueue_push(
            session, subscription_id=subscription_id, message_id=message_id, now=clock.now()
        )


def push_jobs(db: Database) -> list[QueuedJob]:
    with db.read() as session:
        jobs = session.scalars(select(QueuedJob).where(QueuedJob.kind == PUSH_JOB)).all()
        session.expunge_all()
        return list(jobs)


def test_a_push_arrives_encrypted_signed_and_says_what_the_contract_says(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    # The subscription comes after the message, so that only this test's push is sent.
    long_text = "Your interview is confirmed. " * 20
    message = body(world["emp_team"].send(conv, long_text), 201)
    _, sub_id = subscribe(world["cand"], service, "carla-phone")
    push(db, clock, sub_id, message["id"])
    drain(worker)

    [arrived] = service.to("carla-phone")
    payload = arrived.payload
    assert set(payload) == {"type", "conversation", "message", "title", "body", "url"}
    assert payload["type"] == "message"
    assert payload["conversation"] == conv
    assert payload["message"] == message["id"]
    # The title as the candidate sees the conversation.
    assert (
        payload["title"] == body(world["cand"].get(f"/api/v1/conversations/{conv}"), 200)["title"]
    )
    assert payload["url"] == f"/conversations/{conv}?message={message['id']}"
    assert payload["body"].startswith("Tess Team: Your interview is confirmed.")
    assert len(payload["body"]) <= 200
    assert payload["body"].endswith("…")
    # VAPID was verified by the service; these are the headers it saw.
    headers = arrived.headers
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["TTL"] == str(24 * 3600)
    assert headers["Urgency"] == "high"  # a candidate
    assert headers["Topic"] == f"c{conv}"
    assert arrived.claims["aud"] == service.origin
    assert arrived.claims["sub"] == "mailto:hiring@example.com"
    assert not service.rejected
    [job] = push_jobs(db)
    assert job.status == JobStatus.done


def test_a_short_message_is_not_cut_and_staff_get_normal_urgency(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    message = body(world["cand"].send(conv, "Thanks!\nSee you then."), 201)
    _, sub_id = subscribe(world["emp_team"], service, "tess-laptop")
    push(db, clock, sub_id, message["id"])
    drain(worker)
    [arrived] = service.to("tess-laptop")
    assert arrived.payload["body"] == "Carla Candidate: Thanks! See you then."
    assert arrived.headers["Urgency"] == "normal"


def test_nothing_is_pushed_for_a_deleted_read_or_hidden_message_or_with_pushes_off(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    team, cand = world["emp_team"], world["cand"]
    hidden = body(team.send(conv, "hidden by the candidate"), 201)["id"]
    read = body(team.send(conv, "read it"), 201)["id"]
    deleted = body(team.send(conv, "oops"), 201)["id"]
    _, sub_id = subscribe(cand, service, "carla-quiet")
    assert team.delete(f"/api/v1/messages/{deleted}", **{"for": "everyone"}).status_code == 204
    assert cand.delete(f"/api/v1/messages/{hidden}").status_code == 204
    body(cand.post(f"/api/v1/conversations/{conv}/read", json={"up_to": read}), 200)
    for message in (hidden, read, deleted):
        push(db, clock, sub_id, message)
    drain(worker)
    assert service.to("carla-quiet") == []

    off = body(team.send(conv, "with pushes off"), 201)["id"]
    body(cand.patch("/api/v1/me", json={"notifications": {"push": False}}), 200)
    push(db, clock, sub_id, off)
    drain(worker)
    assert service.to("carla-quiet") == []
    assert all(j.status == JobStatus.done for j in push_jobs(db))


def test_410_deletes_the_subscription(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    browser, sub_id = subscribe(world["cand"], service, "carla-gone")
    service.answer(browser.endpoint, [410])
    push(db, clock, sub_id, message)
    drain(worker)
    assert service.to("carla-gone") == []
    assert body(world["cand"].get("/api/v1/push/subscriptions"), 200)["items"] == []
    [job] = push_jobs(db)
    assert job.status == JobStatus.done


@pytest.mark.parametrize(
    ("answers", "wait"),
    [([(429, {"Retry-After": "30"})], 30), ([500], 5), ([503, (429, {"Retry-After": "2"})], 5)],
)
def test_429_and_5xx_are_retried_then_delivered_once(
    world: World,
    conv: int,
    service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
    answers: list[int | tuple[int, dict[str, str]]],
    wait: int,
) -> None:
    name = f"carla-busy-{len(answers)}-{wait}"
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(world["cand"], service, name)
    service.answer(name, answers)
    push(db, clock, sub_id, message)
    for _ in answers:
        drain(worker)
        assert service.to(name) == []
        [job] = push_jobs(db)
        assert job.status == JobStatus.queued
        clock.advance(seconds=wait)
    drain(worker)
    assert len(service.to(name)) == 1
    clock.advance(hours=1)
    drain(worker)
    assert len(service.to(name)) == 1
    [job] = push_jobs(db)
    assert job.status == JobStatus.done


def test_retry_after_is_honoured(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(world["cand"], service, "carla-later")
    service.answer("carla-later", [(429, {"Retry-After": "120"})])
    push(db, clock, sub_id, message)
    drain(worker)
    clock.advance(seconds=119)
    drain(worker)
    assert service.to("carla-later") == []
    clock.advance(seconds=1)
    drain(worker)
    assert len(service.to("carla-later")) == 1


def test_another_4xx_fails_for_good(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(world["cand"], service, "carla-bad")
    service.answer("carla-bad", [400])
    push(db, clock, sub_id, message)
    drain(worker)
    clock.advance(hours=1)
    drain(worker)
    [job] = push_jobs(db)
    assert job.status == JobStatus.failed
    assert "400" in (job.last_error or "")
    assert [a.status for a in service.attempts if a.subscription == "carla-bad"] == [400]
    with db.read() as session:
        assert session.get(PushSubscription, sub_id) is not None  # only 404/410 delete it


def test_a_host_name_resolving_to_loopback_is_refused_at_send_time(
    world: World,
    conv: int,
    service: PushService,
    settings: Settings,
    db: Database,
    clock: FrozenClock,
) -> None:
    """With insecure mode off, https://<this machine's name>:<port>/... passes the API's check
    (a host name) but resolves to 127.0.0.1 when sent: refused, nothing reaches the service."""
    host = socket.gethostname()
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, 443)}
    except OSError:
        pytest.skip(f"{host} does not resolve here")
    if not all(ipaddress.ip_address(a).is_loopback for a in resolved):
        pytest.skip(f"{host} does not resolve to loopback here")
    strict = settings.model_copy(update={"push_allow_insecure": False})
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    browser = service.subscription("carla-rebind", origin=f"https://{host}:{service.port}")
    created = world["cand"].post("/api/v1/push/subscriptions", json=browser.json())
    push(db, clock, body(created, 201)["id"], message)
    strict_worker = Worker(
        db=db,
        clock=clock,
        policy=RetryPolicy.of(strict),
        kinds=Pusher(db, strict, clock).job_kinds(),
    )
    drain(strict_worker)
    assert [a for a in service.attempts if a.subscription == "carla-rebind"] == []
    [job] = push_jobs(db)
    assert job.status == JobStatus.failed
    assert "not public" in (job.last_error or "")
    # It never will be: the subscription is dropped.
    assert body(world["cand"].get("/api/v1/push/subscriptions"), 200)["items"] == []


def test_retry_after_takes_seconds_or_a_date() -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Mon, 05 Jan 2026 09:02:00 GMT", now) == 120
    assert retry_after_seconds("Mon, 05 Jan 2026 08:00:00 GMT", now) == 0
    assert retry_after_seconds("99999999", now) == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_long_titles_and_bodies_in_wide_characters_stay_within_what_a_service_takes(
    world: World, conv: int, service: PushService, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    world.api.org("acme", "🏥" * 200, "employer")
    world.api.job("job1", "🩺" * 200, "acme", team=["emp_team"], partners=["tbb", "hireco"])
    message = body(world["emp_team"].send(conv, "💬" * 4000), 201)["id"]
    _, sub_id = subscribe(world["cand"], service, "carla-wide")
    push(db, clock, sub_id, message)
    drain(worker)
    [arrived] = service.to("carla-wide")  # the service refuses more than 4096 bytes
    assert len(arrived.payload["title"]) <= 150 and arrived.payload["title"].endswith("…")
    assert len(arrived.payload["body"]) <= 200


def test_a_key_setting_that_is_no_p256_key_stops_the_sender_at_once(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    for bad in ("not a key", b64url(b"x" * 31), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END"):
        with pytest.raises(VapidKeyInvalid):
            Pusher(db, settings.model_copy(update={"vapid_private_key": bad}), clock)

"""Pushes as they arrive at a browser's push service: encrypted, signed, with the payload the
contract names, nothing for what was deleted or read meanwhile, retried on 429/5xx (after
Retry-After), the subscription dropped on 410, failed for good on another 4xx; and the guard
that keeps pushes off loopback and private addresses."""

from __future__ import annotations

import ipaddress
import socket
import time
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
from jobchat.push.models import PushSubscription
from jobchat.push.queue import PUSH_JOB, enqueue_push
from jobchat.push.sender import (
    JWT_LIFETIME_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    Pusher,
    origin,
    retry_after_seconds,
)
from jobchat.vapid_key import VapidKeyInvalid
from tests.mail_support import drain, worker_for
from tests.push_service import Browser, PushService, allow_insecure_push, b64url
from tests.support import Api, As, World, body, start


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return allow_insecure_push(settings).model_copy(
        update={"email_from": "Acme Hiring <hiring@example.com>"}
    )


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def conv(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def subscribe(who: As, push_service: PushService, name: str) -> tuple[Browser, int]:
    key = body(who.get("/api/v1/push/key"), 200)["public_key"]
    browser = push_service.subscription(name, server_key=key)
    created = body(who.post("/api/v1/push/subscriptions", json=browser.json()), 201)
    return browser, int(created["id"])


def push(db: Database, clock: FrozenClock, subscription_id: int, message_id: int) -> None:
    """Queue a push as the ladder does: decided for the subscription's owner of the moment."""
    with db.work() as session:
        sub = session.get(PushSubscription, subscription_id)
        assert sub is not None
        enqueue_push(
            session,
            user_id=sub.user_id,
            subscription_id=subscription_id,
            message_id=message_id,
            now=clock.now(),
        )


def push_jobs(db: Database) -> list[QueuedJob]:
    with db.read() as session:
        jobs = session.scalars(select(QueuedJob).where(QueuedJob.kind == PUSH_JOB)).all()
        session.expunge_all()
        return list(jobs)


def test_a_push_arrives_encrypted_signed_and_says_what_the_contract_says(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    # The subscription comes after the message, so that only this test's push is sent.
    long_text = "Your interview is confirmed. " * 20
    message = body(world["emp_team"].send(conv, long_text), 201)
    _, sub_id = subscribe(world["cand"], push_service, "carla-phone")
    push(db, clock, sub_id, message["id"])
    drain(worker)

    [arrived] = push_service.to("carla-phone")
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
    assert arrived.claims["aud"] == push_service.origin
    assert arrived.claims["sub"] == "mailto:hiring@example.com"
    assert not push_service.rejected
    [job] = push_jobs(db)
    assert job.status == JobStatus.done


def test_a_short_message_is_not_cut_and_staff_get_normal_urgency(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    message = body(world["cand"].send(conv, "Thanks!\nSee you then."), 201)
    _, sub_id = subscribe(world["emp_team"], push_service, "tess-laptop")
    push(db, clock, sub_id, message["id"])
    drain(worker)
    [arrived] = push_service.to("tess-laptop")
    assert arrived.payload["body"] == "Carla Candidate: Thanks! See you then."
    assert arrived.headers["Urgency"] == "normal"


def test_nothing_is_pushed_for_a_deleted_read_or_hidden_message_or_with_pushes_off(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    team, cand = world["emp_team"], world["cand"]
    hidden = body(team.send(conv, "hidden by the candidate"), 201)["id"]
    read = body(team.send(conv, "read it"), 201)["id"]
    deleted = body(team.send(conv, "oops"), 201)["id"]
    _, sub_id = subscribe(cand, push_service, "carla-quiet")
    assert team.delete(f"/api/v1/messages/{deleted}", **{"for": "everyone"}).status_code == 204
    assert cand.delete(f"/api/v1/messages/{hidden}").status_code == 204
    body(cand.post(f"/api/v1/conversations/{conv}/read", json={"up_to": read}), 200)
    for message in (hidden, read, deleted):
        push(db, clock, sub_id, message)
    drain(worker)
    assert push_service.to("carla-quiet") == []

    off = body(team.send(conv, "with pushes off"), 201)["id"]
    body(cand.patch("/api/v1/me", json={"notifications": {"push": False}}), 200)
    push(db, clock, sub_id, off)
    drain(worker)
    assert push_service.to("carla-quiet") == []
    assert all(j.status == JobStatus.done for j in push_jobs(db))


def test_410_deletes_the_subscription(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    browser, sub_id = subscribe(world["cand"], push_service, "carla-gone")
    push_service.answer(browser.endpoint, [410])
    push(db, clock, sub_id, message)
    drain(worker)
    assert push_service.to("carla-gone") == []
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
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
    answers: list[int | tuple[int, dict[str, str]]],
    wait: int,
) -> None:
    name = f"carla-busy-{len(answers)}-{wait}"
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(world["cand"], push_service, name)
    push_service.answer(name, answers)
    push(db, clock, sub_id, message)
    for _ in answers:
        drain(worker)
        assert push_service.to(name) == []
        [job] = push_jobs(db)
        assert job.status == JobStatus.queued
        clock.advance(seconds=wait)
    drain(worker)
    assert len(push_service.to(name)) == 1
    clock.advance(hours=1)
    drain(worker)
    assert len(push_service.to(name)) == 1
    [job] = push_jobs(db)
    assert job.status == JobStatus.done


def test_retry_after_is_honoured(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(world["cand"], push_service, "carla-later")
    push_service.answer("carla-later", [(429, {"Retry-After": "120"})])
    push(db, clock, sub_id, message)
    drain(worker)
    clock.advance(seconds=119)
    drain(worker)
    assert push_service.to("carla-later") == []
    clock.advance(seconds=1)
    drain(worker)
    assert len(push_service.to("carla-later")) == 1


def test_another_4xx_fails_for_good(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(world["cand"], push_service, "carla-bad")
    push_service.answer("carla-bad", [400])
    push(db, clock, sub_id, message)
    drain(worker)
    clock.advance(hours=1)
    drain(worker)
    [job] = push_jobs(db)
    assert job.status == JobStatus.failed
    assert "400" in (job.last_error or "")
    assert [a.status for a in push_service.attempts if a.subscription == "carla-bad"] == [400]
    with db.read() as session:
        assert session.get(PushSubscription, sub_id) is not None  # only 404/410 delete it


def test_a_host_name_resolving_to_loopback_is_refused_at_send_time(
    world: World,
    conv: int,
    push_service: PushService,
    settings: Settings,
    db: Database,
    clock: FrozenClock,
) -> None:
    """With insecure mode off, https://<this machine's name>:<port>/... passes the API's check
    (a host name) but resolves to 127.0.0.1 when sent: refused, nothing reaches the push_service."""
    host = socket.gethostname()
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, 443)}
    except OSError:
        pytest.skip(f"{host} does not resolve here")
    if not all(ipaddress.ip_address(a).is_loopback for a in resolved):
        pytest.skip(f"{host} does not resolve to loopback here")
    strict = settings.model_copy(update={"push_allow_insecure": False})
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    browser = push_service.subscription(
        "carla-rebind", origin=f"https://{host}:{push_service.port}"
    )
    created = world["cand"].post("/api/v1/push/subscriptions", json=browser.json())
    push(db, clock, body(created, 201)["id"], message)
    strict_worker = Worker(
        db=db,
        clock=clock,
        policy=RetryPolicy.of(strict),
        kinds=Pusher(db, strict, clock).job_kinds(),
    )
    drain(strict_worker)
    assert [a for a in push_service.attempts if a.subscription == "carla-rebind"] == []
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
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    world.api.org("acme", "🏥" * 200, "employer")
    world.api.job("job1", "🩺" * 200, "acme", team=["emp_team"], partners=["tbb", "hireco"])
    message = body(world["emp_team"].send(conv, "💬" * 4000), 201)["id"]
    _, sub_id = subscribe(world["cand"], push_service, "carla-wide")
    push(db, clock, sub_id, message)
    drain(worker)
    [arrived] = push_service.to("carla-wide")  # the service refuses more than 4096 bytes
    assert len(arrived.payload["title"]) <= 150 and arrived.payload["title"].endswith("…")
    assert len(arrived.payload["body"]) <= 200


def test_a_key_setting_that_is_no_p256_key_stops_the_sender_at_once(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    for bad in ("not a key", b64url(b"x" * 31), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END"):
        with pytest.raises(VapidKeyInvalid):
            Pusher(db, settings.model_copy(update={"vapid_private_key": bad}), clock)


def test_a_subscription_moved_after_the_push_was_queued_gets_nothing(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    """Decided for Tess; the browser is Ada's by the time it is sent: Ada gets nothing of it."""
    message = body(world["cand"].send(conv, "For Tess's eyes"), 201)["id"]
    browser, sub_id = subscribe(world["emp_team"], push_service, "shared-desk")
    push(db, clock, sub_id, message)
    moved = body(world["emp_admin"].post("/api/v1/push/subscriptions", json=browser.json()), 200)
    assert moved["id"] == sub_id
    drain(worker)
    assert push_service.to("shared-desk") == []
    [job] = push_jobs(db)
    assert job.status == JobStatus.done


def test_a_revoked_sign_in_is_never_pushed_to(
    world: World,
    api: Api,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
) -> None:
    """A push queued before the token that subscribed was revoked never reaches the browser."""
    issued = body(api.integration.post("/api/v1/candidates/cand/tokens"), 201)
    message = body(world["emp_team"].send(conv, "hello"), 201)["id"]
    _, sub_id = subscribe(As(api.client, issued["token"]), push_service, "carla-revoked")
    push(db, clock, sub_id, message)
    assert api.integration.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204
    drain(worker)
    assert push_service.to("carla-revoked") == []


@pytest.mark.parametrize(
    ("endpoint", "audience"),
    [
        ("https://Push.Example.COM/x", "https://push.example.com"),
        ("https://push.example.com:443/x", "https://push.example.com"),
        ("https://push.example.com:8443/x", "https://push.example.com:8443"),
        ("http://127.0.0.1:80/x", "http://127.0.0.1"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"),
        ("https://[2606:4700::1111]:443/x", "https://[2606:4700::1111]"),
    ],
)
def test_the_vapid_audience_is_the_endpoints_origin(endpoint: str, audience: str) -> None:
    """RFC 6454's serialisation: the host in lower case, no default port."""
    assert origin(endpoint) == audience


def test_one_vapid_signature_serves_a_push_service_for_half_its_lifetime(
    world: World,
    conv: int,
    push_service: PushService,
    worker: Worker,
    db: Database,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Signing per push cost as much as the encryption; the push service takes the same JWT
    until it expires, so it is signed once per service and made again when half is left."""
    first = body(world["emp_team"].send(conv, "one"), 201)["id"]
    second = body(world["emp_team"].send(conv, "two"), 201)["id"]
    _, phone = subscribe(world["cand"], push_service, "jwt-phone")
    _, laptop = subscribe(world["cand"], push_service, "jwt-laptop")
    push(db, clock, phone, first)
    push(db, clock, laptop, second)
    drain(worker)
    [a], [b] = push_service.to("jwt-phone"), push_service.to("jwt-laptop")
    assert a.headers["Authorization"] == b.headers["Authorization"]
    assert a.claims["exp"] >= time.time() + JWT_LIFETIME_SECONDS - 60

    later = time.time() + JWT_LIFETIME_SECONDS / 2 + 60
    monkeypatch.setattr("jobchat.push.sender.time.time", lambda: later)
    push(db, clock, phone, second)
    drain(worker)
    [_, c] = push_service.to("jwt-phone")
    assert c.headers["Authorization"] != a.headers["Authorization"]
    assert c.claims["exp"] == int(later) + JWT_LIFETIME_SECONDS
    assert not [r for r in push_service.rejected if r.subscription.startswith("jwt-")]

"""Fix-ups after the security review of webhooks: a message deleted for everyone reaches the ATS
only as a tombstone (and no delivery row keeps its words), an endpoint that hangs cannot take
all of the worker's slots from email, the delivery log says only which kind of thing went
wrong, and a client address that is no address is not audited (and fails nothing)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import RetryPolicy
from jobchat.jobqueue.worker import Worker
from jobchat.webhooks.models import WebhookDelivery
from jobchat.webhooks.sender import WebhookSender
from tests.mail_support import SmtpSink, drain, sink, smtp_settings, worker_for
from tests.support import API_KEY, As, World, body, start
from tests.test_egress import _loopback_names
from tests.test_webhooks_delivery import hook, log
from tests.webhook_receiver import Receiver, receiver

__all__ = ["receiver", "sink"]

SECRET_WORDS = "TOPSECRET wrong candidate salary 90k"
# Short, so that a worker whose every slot waits on a hanging endpoint shows it quickly.
TIMEOUT_SECONDS = 2.0


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return smtp_settings(settings, sink).model_copy(
        update={
            "webhooks_allow_insecure": True,
            "webhooks_timeout_seconds": TIMEOUT_SECONDS,
            "job_backoff_seconds": 60,
            "job_backoff_max_seconds": 3600,
            "worker_concurrency": 4,
        }
    )


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


def stored_payloads(db: Database) -> str:
    with db.read() as session:
        return json.dumps(list(session.scalars(select(WebhookDelivery.payload))))


def test_a_message_deleted_while_the_ats_is_down_reaches_it_without_its_words(
    world: World, receiver: Receiver, worker: Worker, clock: FrozenClock, db: Database
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    hook(world, receiver, "ats", ["message.created", "message.deleted"])
    hook(world, receiver, "log")  # takes it before the deletion
    receiver.answer("ats", [503])
    sent = body(world["emp_team"].send(conv, SECRET_WORDS, subject="Offer"), 201)
    drain(worker)
    [refused] = receiver.to("ats")
    assert refused.status == 503 and refused.data["message"]["body"] == SECRET_WORDS
    [logged] = receiver.delivered("log")
    assert logged.data["message"]["body"] == SECRET_WORDS
    assert logged.data["message"]["deleted"] is False
    receiver.stop()
    clock.advance(minutes=2)
    drain(worker)  # the retry: connection refused
    assert SECRET_WORDS in stored_payloads(db)

    deleted = world["emp_team"].delete(f"/api/v1/messages/{sent['id']}", **{"for": "everyone"})
    assert deleted.status_code == 204
    body(world["emp_team"].send(conv, "Still on for Tuesday?"), 201)
    # Neither the pending delivery nor the one already taken keeps the words.
    stored = stored_payloads(db)
    assert SECRET_WORDS not in stored and "Offer" not in stored
    assert "Still on for Tuesday?" in stored

    receiver.start()
    clock.advance(hours=1)
    drain(worker)
    got = receiver.delivered("ats")
    assert [(g.type, g.data["message"]["id"]) for g in got] == [
        ("message.created", sent["id"]),
        ("message.deleted", sent["id"]),
        ("message.created", sent["id"] + 1),
    ]
    tombstone = got[0].data["message"]
    assert (tombstone["body"], tombstone["subject"], tombstone["attachments"]) == ("", None, [])
    assert tombstone["deleted"] is True
    assert tombstone["author"]["id"] == "emp_team" and tombstone["channel"] == "app"
    assert got[2].data["message"]["body"] == "Still on for Tuesday?"
    assert got[2].data["message"]["deleted"] is False
    assert not receiver.rejected
    assert SECRET_WORDS not in json.dumps([r.body for r in receiver.to("ats")[1:]])


def test_webhooks_hanging_until_the_timeout_leave_slots_for_email(
    world: World, receiver: Receiver, worker: Worker, sink: SmtpSink
) -> None:
    """Four slots, four webhooks whose endpoints hang, their attempts due before an email: two
    of them run, the email goes at once, and the other two wait for a free webhook slot."""
    made = []
    for name in ("ats1", "ats2", "ats3", "ats4"):
        made.append(hook(world, receiver, name)["id"])
        receiver.answer(name, ["hang"])
    conv = start(world["emp_team"], "application", application="app1")
    body(world["emp_team"].send(conv, "Hello"), 201)
    body(world["emp_team"].send(conv, "Your interview", channel="email", subject="Hi"), 201)
    assert worker.concurrency == 4

    async def run() -> float:
        task = asyncio.create_task(worker.run())
        started = time.monotonic()
        while not sink.to("cand@example.org") and time.monotonic() - started < 10:
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        await worker.stop(timeout=TIMEOUT_SECONDS * 3)
        await task
        return took

    took = asyncio.run(run())
    assert sink.to("cand@example.org"), "the email was never sent"
    assert took < TIMEOUT_SECONDS * 0.75, took
    # Only two attempts were made (and timed out) meanwhile: the other two waited for a slot.
    tried = [t for webhook_id in made for t in log(world, webhook_id)]
    assert [t["error"] for t in tried] == ["timed out", "timed out"]


def test_the_delivery_log_names_no_address_the_name_resolved_to(
    world: World, receiver: Receiver, settings: Settings, db: Database, clock: FrozenClock
) -> None:
    """A name that resolves to loopback passes the URL check and is refused when sent (by a
    worker that allows no loopback): the log says so in general words, never the address."""
    names = _loopback_names()
    if not names:
        pytest.skip("this machine's name does not resolve to loopback")
    made = body(
        world.api.integration.post(
            "/api/v1/webhooks",
            {"url": f"https://{names[0]}:{receiver.port}/hooks/ats", "events": ["message.created"]},
        ),
        201,
    )
    conv = start(world["emp_team"], "application", application="app1")
    body(world["emp_team"].send(conv, "hello"), 201)
    strict = settings.model_copy(update={"webhooks_allow_insecure": False})
    strict_worker = Worker(
        db=db,
        clock=clock,
        policy=RetryPolicy.of(strict),
        kinds=WebhookSender(db, strict, clock).job_kinds(),
    )
    drain(strict_worker)
    [tried] = log(world, made["id"])
    assert (tried["status_code"], tried["error"]) == (None, "address not allowed")
    assert receiver.to("ats") == []
    assert names[0] not in json.dumps(tried) and "127.0.0.1" not in json.dumps(tried)


def test_an_audited_change_from_an_address_that_is_none_stores_no_address(
    client: TestClient, world: World
) -> None:
    """What a proxy that appends to X-Forwarded-For passes on is the client's to write: a
    value that is no IP address is not kept, and never fails the change (64 characters fit the
    column; on PostgreSQL more used to make the request fail)."""
    body(world.api.integration.put("/api/v1/candidates/c1", {"name": "A", "email": "a@x.org"}), 201)
    body(world.api.integration.put("/api/v1/candidates/c2", {"name": "B", "email": "b@x.org"}), 201)
    for ext_id, peer in (("c1", "x" * 200), ("c2", "2001:db8::7%" + "e" * 80)):
        with TestClient(client.app, client=(peer, 50000)) as forged:
            assert As(forged, API_KEY).delete(f"/api/v1/candidates/{ext_id}").status_code == 204
    audit = world.api.integration.get("/api/v1/audit", action="candidate.deactivated")
    items = body(audit, 200)["items"]
    assert [(e["subject"]["id"], e["ip"]) for e in items] == [("c2", "2001:db8::7"), ("c1", None)]

"""End to end through the real push channel: a message sent through the API reaches the other
members' browsers as an encrypted, signed Web Push (the loopback push service decrypts it with
the browser's keys), never the author's, never a browser of someone with the app open."""

from __future__ import annotations

from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from tests.mail_support import drain
from tests.notify_support import app_open, chat_fixture, worker_fixture  # noqa: F401 (fixtures)
from tests.push_service import PushService, insecure_push_settings  # noqa: F401 (a fixture)
from tests.support import As, World, body


def subscribe(who: As, push_service: PushService, name: str, clock: FrozenClock) -> None:
    """What the app's page does: the server's key, the browser's subscription, posted."""
    key = body(who.get("/api/v1/push/key"), 200)["public_key"]
    browser = push_service.subscription(name, server_key=key)
    body(who.post("/api/v1/push/subscriptions", json=browser.json()), 201)
    clock.advance(seconds=1)  # what is sent next arrives after the device subscribed


def test_a_message_is_pushed_to_the_other_members_devices_only(
    world: World,
    client: TestClient,
    db: Database,
    clock: FrozenClock,
    chat: int,
    worker: Worker,
    push_service: PushService,
) -> None:
    subscribe(world["cand"], push_service, "e2e-carla", clock)
    subscribe(world["emp_team"], push_service, "e2e-tess", clock)  # the author
    subscribe(world["emp_admin"], push_service, "e2e-ada", clock)  # has the app open
    with app_open(client, db, world["emp_admin"], "emp_admin"):
        message = body(world["emp_team"].send(chat, "Your interview is on Tuesday."), 201)
        drain(worker)
    [push] = push_service.to("e2e-carla")
    assert push.payload["type"] == "message"
    assert push.payload["message"] == message["id"]
    assert push.payload["conversation"] == chat
    assert push.payload["body"] == "Tess Team: Your interview is on Tuesday."
    assert push.payload["url"] == f"/conversations/{chat}?message={message['id']}"
    assert push_service.to("e2e-tess") == []
    assert push_service.to("e2e-ada") == []
    assert not [a for a in push_service.rejected if a.subscription.startswith("e2e-")]

    # The candidate answers: staff's devices are pushed (the admin's app is closed now), and the
    # candidate's own device is not.
    reply = body(world["cand"].send(chat, "Tuesday works."), 201)
    drain(worker)
    assert [p.payload["message"] for p in push_service.to("e2e-tess")] == [reply["id"]]
    assert [p.payload["message"] for p in push_service.to("e2e-ada")] == [reply["id"]]
    assert len(push_service.to("e2e-carla")) == 1


def test_quiet_hours_hold_the_push_until_morning(
    world: World,
    db: Database,
    clock: FrozenClock,
    chat: int,
    worker: Worker,
    push_service: PushService,
) -> None:
    subscribe(world["cand"], push_service, "night-carla", clock)
    clock.advance(hours=13)  # 22:00 UTC: the candidate's default quiet hours
    body(world["emp_team"].send(chat, "First"), 201)
    newest = body(world["emp_team"].send(chat, "Second"), 201)
    drain(worker)
    assert push_service.to("night-carla") == []
    clock.advance(hours=10)  # 08:00
    drain(worker)
    [push] = push_service.to("night-carla")
    assert push.payload["message"] == newest["id"]

"""Helpers for the notification tests: a worker that knows who has the app open (the app's hub),
devices subscribed for push, the pushes the ladder queued, and an app socket held open."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.models import QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.push.models import PushSubscription
from jobchat.push.queue import PUSH_JOB
from tests.support import As, user_id, wait_until


def ladder_worker(app: FastAPI) -> Worker:
    """The app's worker as the server runs it: with its hub's presence."""
    return build_worker(
        app.state.mail, texter=app.state.texter, presence=app.state.hub.presence, name="test"
    )


def subscribe(db: Database, clock: FrozenClock, ext_id: str, device: str = "phone") -> int:
    """A push subscription for the user, as a browser's subscribe would store it. Its endpoint
    is a loopback address, which the push channel's egress guard refuses without a request:
    these tests look at the pushes the ladder queues (tests/test_notify_push_e2e.py follows
    them to a push service)."""
    with db.write() as session:
        sub = PushSubscription(
            user_id=user_id(db, ext_id),
            endpoint=f"https://127.0.0.1/push/{ext_id}/{device}",
            p256dh="BAAA",
            auth="AAAA",
            created_at=clock.now(),
        )
        session.add(sub)
        session.flush()
        subscription_id = sub.id
    clock.advance(seconds=1)  # what is sent next arrives after the device subscribed
    return subscription_id


def pushes(db: Database) -> list[tuple[int, int]]:
    """(subscription id, message id) of every push the ladder handed to the push channel."""
    with db.read() as session:
        jobs = session.scalars(
            select(QueuedJob).where(QueuedJob.kind == PUSH_JOB).order_by(QueuedJob.id)
        )
        return [(int(j.payload["subscription_id"]), int(j.payload["message_id"])) for j in jobs]


@contextmanager
def app_open(client: TestClient, db: Database, who: As, ext_id: str) -> Iterator[None]:
    """``who`` has the app open (its event-stream socket) for the duration."""
    token = who.headers["Authorization"].removeprefix("Bearer ")
    presence = client.app.state.hub.presence  # type: ignore[attr-defined]
    uid = user_id(db, ext_id)
    with client.websocket_connect(f"/api/v1/events?token={token}") as ws:
        while ws.receive_json()["type"] != "ready":
            pass
        wait_until(lambda: uid in asyncio.run(presence.online([uid])), f"{ext_id} online")
        yield

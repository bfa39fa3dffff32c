"""PostgreSQL goes away while webhooks are being delivered (after the receiver got an event,
before the worker recorded it): once it is back every event arrives, in order, and none twice.

The app reaches the shared PostgreSQL server through a relay on loopback (tests/relay_support.py)
that the receiver cuts as the first event arrives and that comes back a second later."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.webhooks.models import WebhookDelivery
from tests.mail_support import worker_for
from tests.relay_support import Relay, relay, through
from tests.support import Api, body, build_world, start
from tests.webhook_receiver import Received, Receiver, receiver

__all__ = ["receiver", "relay"]

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL: set JOBCHAT_TEST_DATABASE_URL")


def test_the_database_away_mid_delivery_loses_and_repeats_nothing(
    settings: Settings,
    database_url: str,
    db: Database,
    clock: FrozenClock,
    relay: Relay,
    receiver: Receiver,
) -> None:
    relayed = Database(through(relay, database_url))
    settings = settings.model_copy(
        update={"webhooks_allow_insecure": True, "worker_poll_seconds": 0.2}
    )
    try:
        with TestClient(create_app(settings, db=relayed, clock=clock)) as client:
            api = Api(client)
            world = build_world(api)
            made = body(
                api.integration.post(
                    "/api/v1/webhooks", {"url": receiver.url("ats"), "events": ["message.created"]}
                ),
                201,
            )
            receiver.expect("ats", made["secret"])
            conv = start(world["emp_team"], "application", application="app1")
            for i in range(5):
                body(world["cand"].send(conv, f"m{i}"), 201)

            cut = threading.Event()

            def cut_once(_: Received) -> None:
                if not cut.is_set():
                    cut.set()
                    relay.cut()
                    threading.Timer(1.0, relay.restore).start()

            receiver.on_request = cut_once
            worker = worker_for(client.app)  # type: ignore[arg-type]

            def settled() -> bool:
                with db.read() as session:
                    states = session.scalars(select(WebhookDelivery.status)).all()
                return len(states) == 5 and set(states) == {"delivered"}

            async def work_until_settled() -> None:
                running = asyncio.create_task(worker.run())
                deadline = time.monotonic() + 40
                while not settled():
                    assert time.monotonic() < deadline, "the deliveries were never all recorded"
                    await asyncio.sleep(0.1)
                await worker.stop()
                await running

            asyncio.run(work_until_settled())
            assert cut.is_set()
            got = receiver.delivered("ats")
            assert [g.data["message"]["body"] for g in got] == ["m0", "m1", "m2", "m3", "m4"]
            assert len({g.msg_id for g in got}) == 5
            assert len(receiver.to("ats")) == 5  # nothing sent twice
            assert not receiver.rejected
    finally:
        relayed.dispose()

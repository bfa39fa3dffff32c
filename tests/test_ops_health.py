"""``/healthz`` and ``/readyz``: no credentials; readiness names each dependency and answers
503 with Retry-After, promptly, when one does not answer."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from tests.relay_support import Relay, relay, through
from tests.support import free_port

__all__ = ["relay"]

REDIS_URL = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_healthz_and_readyz_need_no_credentials(client: TestClient) -> None:
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "checks": {"database": "ok"}})


def test_the_schema_documents_both(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/healthz"]["get"]["responses"]) == {"200"}
    ready = paths["/readyz"]["get"]["responses"]
    assert {"200", "503"} <= set(ready)
    assert ready["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }


@pytest.fixture
def with_redis(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    fanned = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": f"jobchat-health-{uuid.uuid4().hex}"}
    )
    with TestClient(create_app(fanned, db=db, clock=clock)) as client:
        yield client


def test_readyz_checks_redis_when_it_is_configured(with_redis: TestClient) -> None:
    r = with_redis.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_names_redis_when_it_does_not_answer(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    nowhere = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(nowhere, db=db, clock=clock)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "5"
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable: "), body


@pytest.fixture
def relayed_client(
    settings: Settings, database_url: str, db: Database, clock: FrozenClock, relay: Relay
) -> Iterator[TestClient]:
    """The app on PostgreSQL by way of the relay, ready (its /readyz answered 200 once)."""
    if db.is_sqlite:
        pytest.skip("a database server that goes away: PostgreSQL")
    relayed = Database(through(relay, database_url))
    try:
        with TestClient(create_app(settings, db=relayed, clock=clock)) as client:
            assert client.get("/readyz").status_code == 200
            yield client
    finally:
        relay.close()  # before the pool's connections, which may wait on hung ones
        relayed.dispose()


def test_a_hung_database_does_not_hang_readyz(relayed_client: TestClient, relay: Relay) -> None:
    """PostgreSQL's host stops answering (connections are taken and never served): /readyz
    answers 503 naming the timeout within its own short limit, and probes arriving meanwhile
    join the one check in flight instead of each holding a thread."""
    relay.hang()
    before = threading.active_count()
    answers: list[httpx.Response] = []
    probes = [
        threading.Thread(target=lambda: answers.append(relayed_client.get("/readyz")))
        for _ in range(5)
    ]
    for probe in probes:
        probe.start()
    for probe in probes:
        probe.join(timeout=30)
    assert len(answers) == 5
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.json()["checks"]["database"].startswith("timeout: "), r.json()
    # One check thread at most (the probes' own threads have ended).
    assert threading.active_count() <= before + 1
    relay.restore()


def test_readyz_is_ok_at_once_when_the_database_restarted_since_its_last_check(
    relayed_client: TestClient, relay: Relay
) -> None:
    """The pooled connection the last check used is dead (the database restarted a moment
    ago, and the pool trusts a connection used so recently): the check says how the database
    is now, on a new connection, not that an old one died."""
    connections = relay.accepted
    relay.cut()  # every open connection closed: the server restarted...
    relay.restore()  # ...and is back
    r = relayed_client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "checks": {"database": "ok"}})
    assert relay.accepted > connections  # on a new connection

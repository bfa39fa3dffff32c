"""PostgreSQL goes away and comes back: every request meanwhile answers 503
``service_unavailable`` with Retry-After (API, pages, socket handshakes; never 500), and the
server recovers by itself when the database returns, with nothing that was stored lost.

The shared PostgreSQL server keeps running: the app reaches it through a relay on loopback
(tests/relay_support.py) that the tests cut (open connections closed, nothing listening on the
port: a new connection is refused) and restore.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.models import JobStatus
from jobchat.jobqueue.worker import JobKind, Settle, Worker
from tests.relay_support import Relay, relay, through
from tests.support import Api, As, assert_error, build_world, eventually, start, wait_until
from tests.test_jobqueue import POLICY, Recorder, jobs, queue
from tests.test_stream_e2e import Backend, Cast, Server, Sockets, created, launch, refused

__all__ = ["relay"]

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL: set JOBCHAT_TEST_DATABASE_URL")


def assert_unavailable(r: httpx.Response) -> None:
    assert_error(r, 503, "service_unavailable")
    assert r.headers["Retry-After"] == "5"


def test_requests_answer_503_while_the_database_is_away_and_work_again_after(
    settings: Settings, database_url: str, db: Database, clock: FrozenClock, relay: Relay
) -> None:
    relayed = Database(through(relay, database_url))
    try:
        with TestClient(create_app(settings, db=relayed, clock=clock)) as client:
            api = Api(client)
            world = build_world(api)
            staff, cand = world["emp_admin"], world["cand"]
            conv = start(staff, "application", application="app1")
            assert staff.send(conv, "before").status_code == 201

            relay.cut()
            assert_unavailable(cand.get("/api/v1/conversations"))
            assert_unavailable(cand.messages(conv))
            assert_unavailable(cand.get("/api/v1/unread"))
            assert_unavailable(staff.send(conv, "during"))
            assert_unavailable(
                api.integration.put("/api/v1/organizations/x", {"name": "X", "kind": "employer"})
            )
            # A token this process has never seen must be looked up: that answers 503 too.
            assert_unavailable(As(client, "no-such-token").get("/api/v1/me"))
            page = client.get("/login/some-link-secret")
            assert page.status_code == 503, page.text
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["Retry-After"] == "5"
            assert "Try again in a moment" in page.text
            assert client.get("/healthz").json() == {"status": "ok"}
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.headers["Retry-After"] == "5"
            assert ready.json()["status"] == "unavailable"
            assert ready.json()["checks"]["database"].startswith("unreachable: "), ready.json()

            relay.restore()
            # No restart: the pool drops its dead connections and makes new ones.
            eventually(
                lambda: r if (r := staff.send(conv, "after")).status_code == 201 else None,
                "a send once the database is back",
            )
            bodies = [m["body"] for m in cand.messages(conv).json()["items"]]
            assert bodies == ["before", "after"]
            assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}
    finally:
        relayed.dispose()


def test_a_job_done_as_the_database_goes_away_is_recorded_once_it_is_back(
    database_url: str, db: Database, clock: FrozenClock, relay: Relay
) -> None:
    """The work of a job is done (an email went out) and the database goes away before the
    worker records it. Before, the record was dropped and the job ran again when its lease
    ran out (the email went out twice); now the worker keeps trying to record it."""
    relayed = Database(through(relay, database_url))
    recorder = Recorder()

    async def run_then_cut(job: Claimed) -> Settle | None:
        settle = await recorder.run(job)
        relay.cut()
        threading.Timer(1.0, relay.restore).start()
        return settle

    worker = Worker(
        db=relayed,
        clock=clock,
        policy=POLICY,
        kinds={"test.job": JobKind(run=run_then_cut)},
        concurrency=1,
        poll_seconds=0.2,
    )
    queue(db, clock, 1)

    async def work_until_done() -> None:
        running = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 30
        while jobs(db)[0].status != JobStatus.done:
            assert time.monotonic() < deadline, "the job was never recorded as done"
            await asyncio.sleep(0.1)
        await worker.stop()
        await running

    try:
        asyncio.run(work_until_done())
    finally:
        relayed.dispose()
    assert recorder.runs == {1: 1}
    assert "settled_at" in jobs(db)[0].payload
    assert (worker.stats.done, worker.stats.retried, worker.stats.failed) == (1, 0, 0)


def delivered(server: Server, staff_token: str, conv: int, message: int) -> bool:
    r = server.http.get(
        f"/api/v1/conversations/{conv}/messages",
        headers={"Authorization": f"Bearer {staff_token}"},
    )
    if r.status_code != 200:
        return False
    for item in r.json()["items"]:
        if item["id"] == message:
            return [d["status"] for d in item["deliveries"] or []] == ["sent"]
    return False


@pytest.mark.slow
def test_serve_survives_an_outage_and_loses_nothing(
    database_url: str, db: Database, relay: Relay, tmp_path: Path
) -> None:
    """Two ``jobchat serve`` processes (no Redis: they learn of each other's events by polling
    the table) through the relay. During the outage: 503s, sockets refused with 503, and the
    worker and the event poller keep trying; after it, without a restart: an email queued before
    the outage goes out, a message sent through B reaches a socket held on A (A's poller
    survived), and new sends work."""
    backend = Backend(through(relay, database_url), None, "unused")
    a = launch("A", backend, tmp_path, stream_poll_seconds="1", worker_poll_seconds="0.5")
    a.wait_ready()
    b = launch("B", backend, tmp_path, stream_poll_seconds="1", run_worker="false")
    sockets = Sockets()
    try:
        b.wait_ready()
        cast = Cast(a)
        staff, cand = cast.user("emp_admin"), cast.user("cand")
        conv = staff.start("application", application=cast.ext("app1"))
        stream, _, _ = sockets.follow(a, cand)
        first = staff.send(conv, "before the outage")
        stream.take(created(first["id"]), "the message sent before the outage")
        # Queued as the database goes away: its job is run once it is back.
        mail = staff.ok(
            "POST",
            f"/api/v1/conversations/{conv}/messages",
            {"body": "by email", "channel": "email", "subject": "Your application"},
        )

        relay.cut()
        for server in (a, b):
            assert_unavailable(staff.on(server).request("GET", "/api/v1/conversations"))
            assert_unavailable(
                staff.on(server).request(
                    "POST", f"/api/v1/conversations/{conv}/messages", {"body": "lost?"}
                )
            )
            assert_unavailable(refused(server, cand.token))
            assert server.http.get("/healthz").status_code == 200
            assert server.http.get("/readyz").status_code == 503
        wait_until(
            lambda: "reading new events failed" in a.output(),
            "A's event poller meets the outage",
            log=a.output,
        )

        relay.restore()
        eventually(
            lambda: r if (r := b.http.get("/readyz")).status_code == 200 else None,
            "B ready again",
            log=b.output,
        )
        later = cast.user("emp_admin", b).send(conv, "after the outage, through B")
        stream.take(created(later["id"]), "B's message, read by A's poller", timeout=30)
        wait_until(
            lambda: delivered(a, staff.token, conv, mail["id"]),
            "the email queued before the outage sent",
            timeout=30,
            log=a.output,
        )
        bodies = [
            m["body"] for m in cand.ok("GET", f"/api/v1/conversations/{conv}/messages")["items"]
        ]
        assert bodies == ["before the outage", "by email", "after the outage, through B"]
        for server in (a, b):
            assert server.process.poll() is None, server.output()
            assert " 500 " not in server.output(), server.output()[-4000:]
            assert "Traceback" not in server.output(), server.output()[-4000:]
    finally:
        sockets.close_all()
        a.stop()
        b.stop()

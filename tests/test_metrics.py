"""``GET /metrics`` (integration key): Prometheus text that a Prometheus parser reads, whose
numbers move when things happen; and ``X-Request-ID`` on every answer, errors included."""

from __future__ import annotations

import gc
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.ops.logs import RequestIdFilter
from tests.support import API_KEY, As, World, assert_error, body, eventually, start

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    """Every sample of /metrics, by name and labels; fails unless the text parses."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_is_for_the_integration_key_only(world: World, client: TestClient) -> None:
    assert_error(client.get("/metrics"), 401)
    assert_error(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
    assert_error(world["emp_team"].get("/metrics"), 403, "integration_key_required")


def test_requests_are_counted_by_route_template_and_status(
    world: World, client: TestClient
) -> None:
    before = scrape(client)
    for missing in (999_991, 999_992, 999_993):
        assert_error(world["emp_team"].get(f"/api/v1/conversations/{missing}"), 404)
    assert_error(client.get("/api/v1/no/such/thing"), 404)
    after = scrape(client)

    route = "/api/v1/conversations/{conversation_id}"
    counted = "jobchat_http_requests_total"
    assert value(after, counted, method="GET", route=route, status="404") == (
        value(before, counted, method="GET", route=route, status="404") + 3
    )
    # A path no route serves is one series, whatever the path: cardinality stays bounded.
    assert value(after, counted, method="GET", route="unmatched", status="404") == (
        value(before, counted, method="GET", route="unmatched", status="404") + 1
    )
    assert not any("999991" in str(labels) for _, labels in after)
    timed = "jobchat_http_request_duration_seconds_count"
    assert value(after, timed, method="GET", route=route) >= 3
    bucket = "jobchat_http_request_duration_seconds_bucket"
    assert value(after, bucket, method="GET", route=route, le="+Inf") >= 3


def test_a_send_counts_a_message_on_its_channel_once(world: World, client: TestClient) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    before = scrape(client)
    body(world["emp_team"].send(conv, "Hello", idempotency_key="k-1"), 201)
    body(world["emp_team"].send(conv, "Hello", idempotency_key="k-1"), 201)  # a replay
    body(world["cand"].send(conv, "Hi!"), 201)
    after = scrape(client)
    sent = "jobchat_messages_sent_total"
    assert value(after, sent, channel="app") == value(before, sent, channel="app") + 2
    # A send refused by validation stores nothing and counts nothing.
    assert_error(world["emp_team"].send(conv, ""), 422)
    assert value(scrape(client), sent, channel="app") == value(after, sent, channel="app")


def test_jobs_are_read_from_the_database_whichever_process_queued_them(
    world: World, client: TestClient, settings: Settings, database_url: str
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    body(world["emp_team"].send(conv, "Tuesday?", channel="email", subject="Interview"), 201)
    jobs = "jobchat_jobs"
    assert value(scrape(client), jobs, kind="email.delivery", status="queued") == 1
    assert value(scrape(client), "jobchat_messages_sent_total", channel="email") == 1

    # Another process (another app, its own registry) reports the same queue.
    other_db = Database(settings.sqlalchemy_url)
    try:
        with TestClient(create_app(settings, db=other_db, clock=FrozenClock())) as other:
            seen = scrape(other)
            assert value(seen, jobs, kind="email.delivery", status="queued") == 1
            # ...but only the requests and sends it served itself.
            assert value(seen, "jobchat_messages_sent_total", channel="email") == 0
    finally:
        other_db.dispose()


def test_open_sockets_and_pool_in_use_are_current(
    world: World, client: TestClient, db: Database
) -> None:
    token = world["cand"].headers["Authorization"].removeprefix("Bearer ")
    assert value(scrape(client), "jobchat_open_sockets") == 0
    with client.websocket_connect(f"/api/v1/events?token={token}") as ws:
        ws.receive_text()  # the server's first frame: the socket is subscribed
        eventually(
            lambda: True if value(scrape(client), "jobchat_open_sockets") == 1 else None,
            "the open socket is counted",
        )
    eventually(
        lambda: True if value(scrape(client), "jobchat_open_sockets") == 0 else None,
        "the closed socket is no longer counted",
    )
    with db.read() as session:
        session.connection()  # holds one connection of the app's pool while scraped
        assert value(scrape(client), "jobchat_db_pool_in_use") >= 1


# --- request ids ----------------------------------------------------------------------------------


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, its records stamped with the request id as our log handler stamps them."""
    stamp = RequestIdFilter()
    caplog.handler.addFilter(stamp)
    caplog.set_level(logging.INFO)
    yield caplog
    caplog.handler.removeFilter(stamp)


MADE = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")  # this process's prefix, then a counter


def test_every_answer_carries_a_request_id(world: World, client: TestClient) -> None:
    user: As = world["emp_team"]
    answers = {
        "200": user.get("/api/v1/me"),
        "401": client.get("/api/v1/me"),
        "404": user.get("/api/v1/conversations/999999"),
        "404 unmatched": client.get("/api/v1/nowhere"),
        "405": client.patch("/api/v1/conversations"),
        "422": user.post("/api/v1/conversations", {"kind": "nonsense"}),
        "413": user.post("/api/v1/conversations", {"kind": "x" * 100_000}),
    }
    ids = [answer.headers.get("x-request-id") for answer in answers.values()]
    assert all(rid is not None and MADE.fullmatch(rid) for rid in ids), answers
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-42", True),
        ("01J9ZQ3V8W6Y2K4M5N7P9R1S3T", True),
        ("c0ffee/3:edge@lb-1=+", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("two words", False),
        ('quote"d', False),
        ("-leading-dash", False),
        ("", False),
    ],
)
def test_a_sane_request_id_is_kept_and_any_other_replaced(
    client: TestClient, sent: str, kept: bool
) -> None:
    answer = client.get("/api/v1/me", headers={"X-Request-ID": sent})
    rid = answer.headers["x-request-id"]
    assert (rid == sent) is kept, rid
    if not kept:
        assert MADE.fullmatch(rid), rid


def test_a_500_carries_the_id_and_its_log_line_names_it(
    settings: Settings, db: Database, captured: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, db=db)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken-for-this-test", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken-for-this-test", headers={"X-Request-ID": "trace-500"})
        assert_error(answer, 500, "internal_error")
        assert answer.headers["x-request-id"] == "trace-500"
        counted = scrape(client)
    logged = [r for r in captured.records if r.getMessage().startswith("unhandled error")]
    assert [getattr(r, "request_id", None) for r in logged] == ["trace-500"]
    assert (
        value(
            counted,
            "jobchat_http_requests_total",
            method="GET",
            route="/broken-for-this-test",
            status="500",
        )
        == 1
    )


def test_the_event_stream_upgrade_answers_with_the_request_id(world: World) -> None:
    token = world["cand"].headers["Authorization"].removeprefix("Bearer ")
    client = world.api.client
    with client.websocket_connect(
        f"/api/v1/events?token={token}", headers={"X-Request-ID": "socket-7"}
    ) as ws:
        first = json.loads(ws.receive_text())
        assert first["type"]
        accepted: list[tuple[bytes, bytes]] = list(ws.extra_headers or [])
        assert (b"x-request-id", b"socket-7") in accepted


def test_garbage_collections_are_timed_by_generation(client: TestClient) -> None:
    """A full collection forced between two scrapes is counted under generation 2, with a
    duration (a pause of the whole process); the buckets are cumulative, as Prometheus has it."""
    name = "jobchat_gc_pause_seconds"
    before = scrape(client)
    gc.collect()
    gc.collect()
    after = scrape(client)
    assert value(after, f"{name}_count", generation="2") >= (
        value(before, f"{name}_count", generation="2") + 2
    )
    assert value(after, f"{name}_sum", generation="2") > value(
        before, f"{name}_sum", generation="2"
    )
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (sample, labels), v in after.items()
        if sample == f"{name}_bucket" and dict(labels)["generation"] == "2"
    )
    assert buckets[-1] == (float("inf"), value(after, f"{name}_count", generation="2"))
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)

"""Prometheus metrics at ``GET /metrics`` (integration key).

Each app has its own registry, not prometheus_client's global one: a process reports what it
saw, and several apps in one test process do not collide. What only the database knows for
every process at once (the job queue) is read from it at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobchat.auth.deps import Integration
from jobchat.db.engine import Database
from jobchat.http_errors import error_responses
from jobchat.jobqueue.models import JobStatus
from jobchat.jobqueue.queries import counts_by_kind_and_status
from jobchat.messages.store import SENT_CHANNELS
from jobchat.ops import gc_pauses
from jobchat.realtime.hub import Hub

# Anything else a client may send as a method is counted as "other": labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # a path no route serves (404 or 405 before any route ran)
_SHOWN = (JobStatus.queued, JobStatus.running, JobStatus.failed)


class Metrics:
    """One app's instruments and its registry."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "jobchat_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jobchat_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.messages = Counter(
            "jobchat_messages_sent",
            "Messages stored by this process, by channel (app, email, sms).",
            ["channel"],
            registry=self.registry,
        )
        self.sockets = Gauge(
            "jobchat_open_sockets",
            "Event-stream WebSockets open on this process.",
            registry=self.registry,
        )
        self.pool = Gauge(
            "jobchat_db_pool_in_use",
            "Database connections this process has checked out of its pool.",
            registry=self.registry,
        )
        self.registry.register(JobQueueCollector(db))
        gc_pauses.install()
        self.registry.register(gc_pauses.GcPauseCollector())
        # Children by labels: .labels() validates and locks on every call; a dict lookup doesn't.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._sent: dict[str, Any] = {}
        db.on_session("after_commit", self._count_sent)
        db.on_session("after_rollback", _forget_sent)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def _count_sent(self, session: Session) -> None:
        for channel in session.info.pop(SENT_CHANNELS, ()):
            child = self._sent.get(channel)
            if child is None:
                child = self._sent[channel] = self.messages.labels(channel)
            child.inc()

    def render(self, open_sockets: int) -> bytes:
        self.sockets.set(open_sockets)
        pool = self.db.engine.pool
        checkedout = getattr(pool, "checkedout", None)
        self.pool.set(checkedout() if callable(checkedout) else 0)
        return generate_latest(self.registry)


def _forget_sent(session: Session) -> None:
    session.info.pop(SENT_CHANNELS, None)


class JobQueueCollector(Collector):
    """Jobs queued, running and failed by kind, counted in the database when scraped: the
    same figure from every process, whichever of them queued or ran the jobs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("jobchat_jobs", "Jobs in the queue, by kind and status.")]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "jobchat_jobs", "Jobs in the queue, by kind and status.", labels=["kind", "status"]
        )
        with self.db.read() as session:
            rows = counts_by_kind_and_status(session, [str(s) for s in _SHOWN])
        for kind, status, count in rows:
            family.add_metric([kind, status], count)
        yield family


def route_of(scope: Scope) -> str:
    """The template of the route that answered ("/api/v1/conversations/{conversation_id}"),
    never the raw path: one series per route, whatever ids clients send."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if "endpoint" in scope:  # a mount (the static files) matched
        return f"{scope.get('root_path', '')}/{{path}}"
    return UNMATCHED


class RequestMetrics:
    """Pure ASGI: counts and times each HTTP request once its answer has gone out."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception with no answer sent is a 500 to the client

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.observe(method, route_of(scope), status, time.perf_counter() - started)


router = APIRouter(tags=["operations"], responses=error_responses(401, 403))


@router.get(
    "/metrics",
    dependencies=[Integration],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "Prometheus text."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests by route and status with latency histograms, messages
    sent by channel, jobs queued/running/failed by kind, open sockets, database pool in use."""
    instruments: Metrics = request.app.state.metrics
    hub: Hub | None = getattr(request.app.state, "hub", None)
    sockets = hub.socket_count if hub is not None else 0  # read on the loop that owns them
    body = await run_in_threadpool(instruments.render, sockets)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from jobchat import __version__
from jobchat.activity.api import router as activity_router
from jobchat.app_state import AppState
from jobchat.auth.api import router as auth_router
from jobchat.background import build_worker
from jobchat.clock import Clock, SystemClock
from jobchat.config import Settings, get_settings
from jobchat.conversations.api import router as conversations_router
from jobchat.db.engine import Database
from jobchat.directory.api import integration as directory_router
from jobchat.directory.api import me as me_router
from jobchat.fast_reads import FastReads
from jobchat.files.api import UPLOAD_FRAMING_BYTES, UPLOAD_PATH
from jobchat.files.api import router as files_router
from jobchat.files.storage import configured_storage
from jobchat.http_errors import BodyLimit, install_error_handlers
from jobchat.jobqueue.api import router as jobs_router
from jobchat.jobqueue.worker import Worker
from jobchat.mail.api import INBOUND_EMAIL_PATH
from jobchat.mail.api import router as inbound_email_router
from jobchat.mail.service import MailService
from jobchat.mail.smtpd import start_smtp_server
from jobchat.mail.transport import MailTransport
from jobchat.messages.api import router as messages_router
from jobchat.messages.fast_send import FastSend
from jobchat.ops.docs import install_docs
from jobchat.ops.health import router as health_router
from jobchat.ops.metrics import Metrics, RequestMetrics
from jobchat.ops.metrics import router as metrics_router
from jobchat.ops.openapi import document_errors
from jobchat.ops.requests import RequestIds
from jobchat.ops.startup import warn_without_integration_key
from jobchat.privacy.api import router as privacy_router
from jobchat.push.api import router as push_router
from jobchat.ratelimit import RateLimiter
from jobchat.realtime.api import is_event_stream, serve_socket
from jobchat.realtime.bus import Bus, LocalBus, RedisBus
from jobchat.realtime.hub import Hub
from jobchat.realtime.presence import LocalPresence, Presence, RedisPresence
from jobchat.request_threads import READ_THREADS
from jobchat.scheduling.api import router as scheduling_router
from jobchat.scheduling.bulk.api import router as bulk_router
from jobchat.search.api import router as search_router
from jobchat.sms.api import integration as sms_integration
from jobchat.sms.api import users as sms_users
from jobchat.sms.api import webhooks as sms_webhooks
from jobchat.sms.outbound import Texter
from jobchat.sms.spool import spool_ingester
from jobchat.stopping import stop_tasks
from jobchat.templates.api import router as templates_router
from jobchat.web import routers as web_routers
from jobchat.web.assets import static_files
from jobchat.web.conversation import MAX_FORM_FILES, SEND_FORM_PATH
from jobchat.web.errors import page_error
from jobchat.web.security import SecurityHeaders
from jobchat.web.templating import STATIC_DIR
from jobchat.webhooks.api import router as webhooks_router

DESCRIPTION = """
Recruiting conversations beside your applicant tracking system.

* **Integration endpoints** (integration key): mirror organisations, staff, candidates, jobs
  and applications with idempotent upserts keyed by your own ids; deactivate people and close
  jobs; issue, list and revoke user tokens; issue one-time sign-in links.
* **User endpoints** (user token or browser session): the inbox, conversations, messages,
  read state, the unread badge and the candidate manager. A user sees exactly the
  conversations they are a member of; anything else answers 404.
* **Real-time** (a WebSocket at `/api/v1/events`, which OpenAPI cannot describe): the stored
  events of your conversations as JSON frames `{"id", "type", "conversation", "data"}`,
  resumable with `?after=<last id>`, plus typing and presence. Credentials: a bearer header,
  `?token=`, or the session cookie. The README's "Real-time" section lists every frame.

* **Email**: messages sent with `"channel": "email"` go out through the jobs worker with a
  reply address unique to the recipient and conversation; replies come back over SMTP or
  through `POST /api/v1/inbound/email` (raw `message/rfc822`, authenticated with
  `JOBCHAT_INBOUND_EMAIL_SECRET`). `GET /api/v1/background-jobs` (integration key) shows what
  is waiting and what failed.

* **SMS**: messages sent with `"channel": "sms"` go out through Twilio; texts and delivery
  statuses come back through Twilio's signed webhooks under `/api/v1/inbound/sms/`. Consent
  belongs to the number: a STOP covers every candidate who has it.
* **Operations**: `/healthz` and `/readyz` (no credentials), `/metrics` (Prometheus, integration
  key). Every answer carries `X-Request-ID`. When the database cannot take a request the answer
  is 503 (`busy` or `service_unavailable`) with `Retry-After`.

Every error has the shape `{"error": {"code", "message", "fields"?}}`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    mail_transport: MailTransport | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    state = AppState(
        settings=settings,
        db=db
        or Database(settings.sqlalchemy_url, write_timeout_seconds=settings.write_timeout_seconds),
        clock=clock or SystemClock(),
        send_limiter=RateLimiter(settings.send_rate_per_minute, 60.0),
        storage=configured_storage(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _threads_for_reads(state)
        await asyncio.to_thread(warn_without_integration_key, state.db, settings)
        # The hub lives on the server's event loop, so it is made here, not at import.
        bus, presence = _fan_out(settings)
        hub = Hub(
            db=state.db,
            bus=bus,
            presence=presence,
            settings=settings,
            clock=state.clock,
            tokens=state.tokens,
        )
        app.state.hub = hub
        mail = await asyncio.to_thread(
            MailService.create,
            state.db,
            state.clock,
            settings,
            transport=mail_transport,
            storage=state.storage,
        )
        app.state.mail = mail
        texter = Texter.create(state.db, settings, state.clock)
        app.state.texter = texter
        await hub.start()
        async with contextlib.AsyncExitStack() as stack:
            # Last out: the threads of the requests answered before FastAPI's routing.
            stack.push_async_callback(asyncio.to_thread, state.threads.close)
            if texter is not None and texter.provider.name == "twilio":
                ingester = spool_ingester(state.db, state.clock, settings)
                app.state.sms_spool = ingester
                spool_task = asyncio.create_task(ingester.run(), name="jobchat-sms-spool")
                stack.push_async_callback(stop_tasks, [spool_task])
            if settings.run_worker:
                worker = build_worker(
                    mail,
                    texter=texter,
                    presence=hub.presence,
                    storage=state.storage,
                    threads=settings.worker_threads_in_server,
                )
                app.state.worker = worker
                task = asyncio.create_task(worker.run(), name="jobchat-worker")
                stack.push_async_callback(_stop_worker, worker, task)
            if settings.inbound_smtp_port is not None:
                smtp = await start_smtp_server(
                    mail,
                    settings.inbound_smtp_host,
                    settings.inbound_smtp_port,
                    max_bytes=settings.max_inbound_email_bytes,
                )
                stack.push_async_callback(_close_server, smtp)
            try:
                yield
            finally:
                await hub.stop()

    app = _JobchatApp(
        # FastAPI's OpenTelemetry hooks off: jobchat's metrics are Prometheus's (/metrics), and
        # with them on, every request asked OpenTelemetry for three providers, each a look at
        # the environment (1% of a send's CPU, bench/bench_send.py --py-spy).
        telemetry=_NO_TELEMETRY,
        title="jobchat",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by jobchat.ops.docs
        redoc_url=None,
    )
    app.state.jobchat = state
    app.state.metrics = Metrics(state.db)
    install_error_handlers(app, pages=page_error)
    # Innermost of the middlewares: the ordinary send, inbox page and history page, answered
    # before FastAPI's routing.
    app.add_middleware(FastSend, owner=app)
    app.add_middleware(FastReads, owner=app)
    app.add_middleware(SecurityHeaders, embed_origins=settings.frame_origins)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        larger={INBOUND_EMAIL_PATH: settings.max_inbound_email_bytes},
        # An upload is bounded by its own limit (the route answers 413 past it), plus room for
        # the multipart framing around the file.
        # The no-JS composer's form takes a message's files in one body.
        larger_matching=[
            (UPLOAD_PATH, settings.max_attachment_bytes + UPLOAD_FRAMING_BYTES),
            (
                SEND_FORM_PATH,
                MAX_FORM_FILES * (settings.max_attachment_bytes + UPLOAD_FRAMING_BYTES),
            ),
        ],
    )
    for router in (
        metrics_router,
        directory_router,
        auth_router,
        me_router,
        conversations_router,
        messages_router,
        files_router,
        activity_router,
        push_router,
        templates_router,
        scheduling_router,
        bulk_router,
        search_router,
        webhooks_router,
        inbound_email_router,
        jobs_router,
        privacy_router,
        sms_webhooks,
        sms_users,
        sms_integration,
        health_router,
        *web_routers,
    ):
        app.include_router(router)
    app.mount("/static", static_files(str(STATIC_DIR)), name="static")
    install_docs(app)
    document_errors(app)
    return app


_NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


class _JobchatApp(FastAPI):
    """FastAPI with request ids and metrics outside even Starlette's last-resort error layer,
    which ``add_middleware`` cannot reach: a 500 is counted, and carries its X-Request-ID. The
    event-stream socket is taken before all of them (jobchat.realtime.api.serve_socket)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_event_stream(scope):
            scope["app"] = self  # as Starlette sets it for what it runs (ws.app)
            await serve_socket(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        return RequestIds(RequestMetrics(inner, self.state.metrics))


def _threads_for_reads(state: AppState) -> None:
    """Writers waiting for their turn each hold a thread of the pool sync routes run on (at most
    ``max_waiting`` of them, plus the one writing), and so do concurrent writers (PostgreSQL
    sends: at most their slots and waiters): the pool gets that many on top of anyio's default,
    so plain reads always have their 40 (jobchat.db.turn). So does the pool of the requests
    answered before FastAPI's routing (jobchat.request_threads)."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    turn, slots = state.db.write_turn, state.db.write_slots
    size = READ_THREADS + turn.max_waiting + 1 + slots.slots + slots.max_waiting
    limiter.total_tokens = size
    state.threads.resize(size)


async def _stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    await worker.stop()
    await stop_tasks([task])


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def _fan_out(settings: Settings) -> tuple[Bus, Presence]:
    """Redis between processes when configured; otherwise everything stays in this one."""
    if settings.redis_url:
        bus = RedisBus(settings.redis_url, prefix=settings.redis_prefix)
        presence = RedisPresence(
            bus.redis,
            bus.origin,
            prefix=settings.redis_prefix,
            ttl_seconds=settings.presence_ttl_seconds,
        )
        return bus, presence
    return LocalBus(), LocalPresence()

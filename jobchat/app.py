"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from jobchat import __version__
from jobchat.app_state import AppState
from jobchat.auth.api import router as auth_router
from jobchat.clock import Clock, SystemClock
from jobchat.config import Settings, get_settings
from jobchat.conversations.api import router as conversations_router
from jobchat.db.engine import Database
from jobchat.directory.api import integration as directory_router
from jobchat.directory.api import me as me_router
from jobchat.http_errors import BodyLimit, install_error_handlers
from jobchat.messages.api import router as messages_router
from jobchat.ratelimit import RateLimiter
from jobchat.realtime.api import router as realtime_router
from jobchat.realtime.bus import Bus, LocalBus, RedisBus
from jobchat.realtime.hub import Hub
from jobchat.realtime.presence import LocalPresence, Presence, RedisPresence
from jobchat.web.pages import router as web_router

DESCRIPTION = """
Recruiting conversations beside your applicant tracking system.

* **Integration endpoints** (integration key): mirror organisations, staff, candidates, jobs
  and applications with idempotent upserts keyed by your own ids; issue user tokens and
  one-time sign-in links.
* **User endpoints** (user token or browser session): the inbox, conversations, messages,
  read state, the unread badge and the candidate manager. A user sees exactly the
  conversations they are a member of; anything else answers 404.
* **Real-time** (a WebSocket at `/api/v1/events`, which OpenAPI cannot describe): the stored
  events of your conversations as JSON frames `{"id", "type", "conversation", "data"}`,
  resumable with `?after=<last id>`, plus typing and presence. Credentials: a bearer header,
  `?token=`, or the session cookie. The README's "Real-time" section lists every frame.

Every error has the shape `{"error": {"code", "message", "fields"?}}`.
"""


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or get_settings()
    state = AppState(
        settings=settings,
        db=db or Database(settings.sqlalchemy_url),
        clock=clock or SystemClock(),
        send_limiter=RateLimiter(settings.send_rate_per_minute, 60.0),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The hub lives on the server's event loop, so it is made here, not at import.
        bus, presence = _fan_out(settings)
        hub = Hub(db=state.db, bus=bus, presence=presence, settings=settings, clock=state.clock)
        app.state.hub = hub
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(title="jobchat", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.jobchat = state
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    for router in (
        directory_router,
        auth_router,
        me_router,
        conversations_router,
        messages_router,
        realtime_router,
        web_router,
    ):
        app.include_router(router)
    return app


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

"""``/healthz`` (the process serves) and ``/readyz`` (and can do its work: the database, and
Redis when configured, answer). No credentials: load balancers and service managers call them.

Each check has a short timeout, so a hung database makes ``/readyz`` answer 503 promptly rather
than hang; and at most one check of each kind runs at a time, so a database that never answers
holds one thread, not one per probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from jobchat.app_state import AppState
from jobchat.db.failures import describe
from jobchat.http_errors import UNAVAILABLE_RETRY

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(
        description='Each dependency: "ok", or what is wrong (e.g. "unreachable: ...", '
        '"timeout: ..."). `redis` appears only when JOBCHAT_REDIS_URL is set.',
        examples=[{"database": "ok", "redis": "ok"}],
    )


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """200 while the process serves (liveness). Checks nothing else."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "A dependency does not answer; the failing check is named. "
            "With Retry-After.",
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """200 when the database (and Redis, when configured) answer within a short timeout;
    503 naming the failing check otherwise (readiness)."""
    state: AppState = request.app.state.jobchat
    probes = _probes(request)
    checks = {"database": await probes.run("database", lambda: _database(state))}
    hub = getattr(request.app.state, "hub", None)
    if state.settings.redis_url and hub is not None:
        checks["redis"] = await probes.run_async("redis", hub.bus.ping)
    ready = all(result == "ok" for result in checks.values())
    body = Readiness(status="ok" if ready else "unavailable", checks=checks)
    if ready:
        return JSONResponse(body.model_dump())
    return JSONResponse(
        body.model_dump(), status_code=503, headers={"Retry-After": str(UNAVAILABLE_RETRY)}
    )


def _database(state: AppState) -> None:
    try:
        _select_one(state)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        # A pooled connection found dead (the database restarted since it was last used, a
        # moment ago: the pool trusted it, see jobchat.db.engine._PingIfStale) tells nothing of
        # the database now: asked again, on a new connection.
        _select_one(state)


def _select_one(state: AppState) -> None:
    with state.db.read() as session:
        session.execute(text("SELECT 1"))


class _Probes:
    """The checks in flight, by name: a new request joins a check still running."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[None]] = {}

    async def run(self, name: str, check: Callable[[], None]) -> str:
        return await self._await(name, lambda: asyncio.to_thread(check))

    async def run_async(self, name: str, check: Callable[[], Awaitable[object]]) -> str:
        async def checked() -> None:
            await check()

        return await self._await(name, checked)

    async def _await(self, name: str, start: Callable[[], Awaitable[None]]) -> str:
        future = self._running.get(name)
        if future is None or future.done():
            future = asyncio.ensure_future(start())
            # Read its outcome even when nobody waits for it any more (it timed out).
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._running[name] = future
        try:
            await asyncio.wait_for(asyncio.shield(future), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"timeout: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        except Exception as exc:
            return f"unreachable: {describe(exc)}"
        return "ok"


def _probes(request: Request) -> _Probes:
    probes: _Probes | None = getattr(request.app.state, "readiness_probes", None)
    if probes is None:
        probes = request.app.state.readiness_probes = _Probes()
    return probes

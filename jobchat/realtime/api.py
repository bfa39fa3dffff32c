"""``/api/v1/events``: the WebSocket a client follows its conversations on."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from jobchat.app_state import AppState
from jobchat.auth.deps import user_for_socket
from jobchat.errors import AppError, Invalid
from jobchat.http_errors import database_away
from jobchat.inputs import MAX_ID, storable
from jobchat.realtime import codes
from jobchat.realtime.frames import Viewer
from jobchat.realtime.hub import Hub
from jobchat.realtime.start import ResyncNeeded
from jobchat.realtime.subscription import Subscription

EVENTS_PATH = "/api/v1/events"
RESYNC_REASON = "cannot resume from that id: reload, then connect without ?after"


def _after(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_ID):
        raise Invalid({"after": "must be an event id (a whole number, 0 or more)"})
    return int(raw)


def _viewer(state: AppState, ws: WebSocket, token: str | None) -> Viewer:
    """Who is at the other end. Only these few fields stay for the socket's lifetime, not the
    ORM user they were read from (a thousand sockets would keep a thousand of those alive).

    The headers and cookies are read from the scope here rather than through ``ws.headers``
    and ``ws.cookies``, which would keep them on the socket's ``WebSocket`` for hours."""
    headers = Headers(scope=ws.scope)
    cookies: dict[str, str] = {}
    for header in headers.getlist("cookie"):
        cookies.update(cookie_parser(header))
    user, credential_id = user_for_socket(state, headers, token, cookies)
    return Viewer(
        user_id=user.id,
        ext_id=user.ext_id,
        name=user.name,
        is_candidate=user.is_candidate,
        credential_id=credential_id,
    )


async def _refuse(ws: WebSocket, error: AppError) -> None:
    """Refuse the handshake with an HTTP answer in the one error shape, where the server lets
    us (the ASGI WebSocket denial extension); otherwise a plain refusal."""
    await _deny(ws, JSONResponse(error.to_body(), status_code=error.status), close_code=1008)


async def _deny(ws: WebSocket, answer: JSONResponse, *, close_code: int) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(answer)
    else:
        await ws.close(code=close_code)


def _database_away(exc: Exception) -> JSONResponse | None:
    """The 503 the HTTP routes give for the same failure (jobchat.http_errors), or None."""
    away = database_away(exc)
    if away is None:
        return None
    code, _message, retry = away
    body = {"error": {"code": code, "message": "The database cannot serve the stream just now."}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry)})


class EventStream:
    """ASGI middleware that hands ``/api/v1/events`` sockets straight to ``event_stream``.

    Why not a route: a socket lives for hours, and every layer it passed through stays on the
    stack for as long, each a coroutine with its closures. Through FastAPI's middleware and
    routing a socket kept 27 coroutines alive, 12 this way; with a thousand sockets that is
    what the garbage collector walks in a full collection, with the event loop stopped. None of
    those layers did anything for this socket: the security headers and body limits are HTTP's,
    the error handlers answer HTTP, and the handler takes no dependencies. Added last, this
    runs inside FastAPI's outermost error layer and before everything of ours.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == EVENTS_PATH:
            await event_stream(WebSocket(scope, receive, send))
        else:
            await self.app(scope, receive, send)


async def event_stream(ws: WebSocket) -> None:
    """Follow your conversations: see the README's "Real-time" section for the frames."""
    state: AppState = ws.app.state.jobchat
    hub: Hub = ws.app.state.hub
    try:
        query = QueryParams(ws.scope["query_string"])  # not kept on ws (see _viewer)
        after = _after(query.get("after"))
        token = query.get("token")
        viewer = await run_in_threadpool(
            _viewer, state, ws, storable(token) if token is not None else None
        )
    except AppError as error:
        await _refuse(ws, error)
        return
    except ValueError:
        await _refuse(ws, Invalid({"token": "is not a token this server gave out"}))
        return
    except Exception as exc:
        if (answer := _database_away(exc)) is None:
            raise
        await _deny(ws, answer, close_code=codes.TRY_AGAIN_LATER)
        return
    if not hub.running:
        await ws.close(code=codes.SERVER_RESTART, reason="the server is starting or stopping")
        return
    await ws.accept()
    try:
        sub = await hub.subscribe(viewer, after)
    except ResyncNeeded:
        await ws.close(code=codes.RESYNC, reason=RESYNC_REASON)
        return
    except Exception as exc:
        if _database_away(exc) is None:
            raise
        await ws.close(code=codes.TRY_AGAIN_LATER, reason="the database cannot be reached")
        return
    writer = asyncio.create_task(_write(ws, sub))
    try:
        await _read(ws, sub, hub)
    finally:
        hub.unsubscribe(sub)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def _write(ws: WebSocket, sub: Subscription) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while (frames := await sub.next_frames()) is not None:
            for frame in frames:
                if sub.closing is not None:
                    break  # closed meanwhile: what is left is not sent
                sub.sending()
                await ws.send_text(frame)
        assert sub.closing is not None
        code, reason = sub.closing
        await ws.close(code=code, reason=reason)


async def _read(ws: WebSocket, sub: Subscription, hub: Hub) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            hub.receive(sub, "")  # a binary frame: answered as invalid
        else:
            hub.receive(sub, text)

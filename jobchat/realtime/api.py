"""``/api/v1/events``: the WebSocket a client follows its conversations on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.types import Receive, Scope, Send

from jobchat.app_state import AppState
from jobchat.auth.deps import user_for_socket
from jobchat.errors import AppError, Invalid
from jobchat.http_errors import database_away
from jobchat.inputs import MAX_ID, storable
from jobchat.ops.requests import HEADER as REQUEST_ID_HEADER
from jobchat.ops.requests import for_socket
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


def _parameters(ws: WebSocket) -> tuple[int | None, str | None]:
    """``?after`` and ``?token``, read from the scope (not kept on ``ws``; see ``_viewer``)."""
    query = QueryParams(ws.scope["query_string"])
    token = query.get("token")
    return _after(query.get("after")), storable(token) if token is not None else None


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


def is_event_stream(scope: Scope) -> bool:
    return bool(scope["type"] == "websocket" and scope["path"] == EVENTS_PATH)


def serve_socket(scope: Scope, receive: Receive, send: Send) -> Coroutine[None, None, None]:
    """An ``/api/v1/events`` socket, taken by the app before any of its layers (jobchat.app).

    Why not a route: a socket lives for hours, and every layer it passed through stays on the
    stack for as long, each a coroutine with its closures. Through FastAPI's middleware and
    routing a socket kept 27 coroutines alive; past FastAPI's own outer layers (its error,
    telemetry and body-limit middlewares) and our request-id and metrics layers, 17: about 100
    objects per socket for the garbage collector, which a full collection walks with the event
    loop stopped (at 10,000 sockets, hundreds of milliseconds). None of those layers did
    anything for this socket: the security headers and body limits are HTTP's, the error
    handlers answer HTTP, metrics count HTTP requests (the hub counts sockets), and the request
    id is set here (``for_socket``). Not a coroutine itself, for the same reason: it returns
    ``event_stream``'s, which the caller awaits.
    """
    return event_stream(WebSocket(scope, receive, send), for_socket(scope))


async def event_stream(ws: WebSocket, request_id: bytes) -> None:
    """Follow your conversations: see the README's "Real-time" section for the frames."""
    state: AppState = ws.app.state.jobchat
    hub: Hub = ws.app.state.hub
    try:
        after, token = _parameters(ws)
        viewer = await run_in_threadpool(_viewer, state, ws, token)
        del token  # this frame lives as long as the socket
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
    await ws.accept(headers=[(REQUEST_ID_HEADER, request_id)])
    # The handshake's headers were read (the viewer, the request id); kept in the scope they
    # would stay for the socket's life, a kilobyte of small objects each.
    ws.scope["headers"] = ws.scope["subprotocols"] = ()
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
        # What the client sends, read here rather than in a coroutine of its own (one frame
        # fewer kept alive for the socket's life).
        while (message := await ws.receive())["type"] != "websocket.disconnect":
            text = message.get("text")
            hub.receive(sub, "" if text is None else text)  # "": a binary frame, invalid
    finally:
        hub.unsubscribe(sub)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def _write(ws: WebSocket, sub: Subscription) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while (frames := await sub.next_frames()) is not None:
            await _send(ws, sub, frames)
            # Not kept while the socket idles until its next frame: the last ones sent.
            del frames
        assert sub.closing is not None
        code, reason = sub.closing
        await ws.close(code=code, reason=reason)


async def _send(ws: WebSocket, sub: Subscription, frames: list[str]) -> None:
    for frame in frames:
        if sub.closing is not None:
            return  # closed meanwhile: what is left is not sent
        sub.sending()
        await ws.send_text(frame)

"""What the requests answered before FastAPI's routing share (``jobchat.messages.fast_send``,
``jobchat.fast_reads``): reading the bearer token as FastAPI's HTTPBearer would, and answering an
error the way the app's exception handlers do.

Such a layer answers only requests that are plainly valid and plainly authenticated; anything
else goes on to FastAPI as it came, so every answer but the ordinary one is FastAPI's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def bearer_token(scope: Scope) -> str | None:
    """The bearer credentials of the request, as fastapi.security.HTTPBearer reads them."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, credentials = value.decode("latin-1").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


async def answer_error(owner: FastAPI, request: Request, exc: Exception) -> Response:
    """The app's answer to ``exc``, as Starlette's ExceptionMiddleware would give it; raised
    again if no handler takes it (a fault: to Starlette's last-resort layer, as from a route)."""
    handler = _handler_for(owner.exception_handlers, exc)
    if handler is None:
        raise exc
    answer = handler(request, exc)
    if isinstance(answer, Response):
        return answer
    return await answer


def _handler_for(handlers: Mapping[Any, Handler], exc: Exception) -> Handler | None:
    """The app's handler for this exception (the nearest class up its hierarchy); not the
    catch-all for ``Exception``, which Starlette keeps for its last-resort layer."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None

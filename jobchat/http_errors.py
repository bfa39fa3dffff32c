"""Turning every failure into the one error shape, and refusing oversized bodies.

Routes raise ``AppError``s; FastAPI's own validation errors, unknown routes and wrong methods
are rendered in the same shape, and anything unexpected becomes a logged 500 that reveals
nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobchat.db.failures import describe, is_busy, is_unreachable
from jobchat.db.turn import WriteBusy
from jobchat.errors import AppError, PayloadTooLarge

log = logging.getLogger("jobchat")


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        401: "No or bad credentials.",
        403: "Visible, but not allowed.",
        404: "Not found, or not visible to the caller.",
        409: "A conflict of state.",
        413: "The request body is too large.",
        415: "The request body is not of the media type this endpoint takes.",
        416: "The requested range is not within the file (`Content-Range: bytes */size`).",
        422: "Invalid input; `fields` names each bad field.",
        429: "`rate_limited`: too many sends in the last minute; `Retry-After` says in how "
        "many seconds the next one fits.",
        503: "`busy`: a write waited too long for its turn (heavy load); "
        "`service_unavailable`: the database cannot be reached. Either way nothing was "
        "changed: retry after `Retry-After` seconds.",
    }.items()
}
for _status in (429, 503):
    _ERRORS[_status]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route or router for these error statuses, in the one shape.
    (401, 403, 413, 422 and 503, which follow from a route's shape, are added to every route
    that can give them by jobchat.ops.openapi; routes list the others.)"""
    return {s: _ERRORS[s] for s in statuses}


def error_answer(status: int) -> dict[str, Any]:
    """The OpenAPI response object of an error status, referring to the ErrorOut schema."""
    answer: dict[str, Any] = {
        "description": _ERRORS[status]["description"],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorOut.__name__}"}}
        },
    }
    if "headers" in _ERRORS[status]:
        answer["headers"] = _ERRORS[status]["headers"]
    return answer


def _error(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"error": body}, status_code=status, headers=all_headers or None)


def _field_name(loc: tuple[int | str, ...]) -> str:
    """("body", "channel") -> "channel"; ("query", "limit") -> "limit"; ("body",) -> "body"."""
    if not loc:
        return "body"
    inside = loc[1:] or loc[:1]
    return ".".join(str(part) for part in inside)


def _validation_message(err: dict[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        return "is not valid JSON"
    if err.get("type") == "missing":
        return "is required"
    if err.get("type") == "extra_forbidden":
        return "is not a known field"
    return str(err.get("msg", "is not valid")).removeprefix("Value error, ")


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    def served(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in request.app.routes)

    return [method for method in _METHODS if served(method)]


class PageErrors(Protocol):
    """Draws an error as a page for a browser that asked for one; None leaves it to JSON."""

    def __call__(
        self, request: Request, status: int, exc: AppError | None, message: str
    ) -> Response | None: ...


def install_error_handlers(app: FastAPI, pages: PageErrors | None = None) -> None:
    def as_page(
        request: Request, status: int, exc: AppError | None, message: str
    ) -> Response | None:
        return pages(request, status, exc, message) if pages is not None else None

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        page = as_page(request, exc.status, exc, exc.message)
        answer = page or _error(exc.status, exc.code, exc.message, exc.fields)
        if exc.retry_after is not None:
            answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        page = as_page(request, 422, None, "Something in that request was not valid.")
        if page is not None:
            return page
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return _error(
                422,
                "invalid_json",
                "The request body is not valid JSON.",
                {"body": "is not valid JSON"},
            )
        fields: dict[str, str] = {}
        for err in exc.errors():
            fields.setdefault(_field_name(tuple(err.get("loc", ()))), _validation_message(err))
        summary = "; ".join(f"{k} {v}" for k, v in fields.items())
        return _error(422, "invalid", f"Invalid input: {summary}.", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (404, 405) and (
            page := as_page(request, exc.status_code, None, "There is nothing here.")
        ):
            return page
        if exc.status_code == 400:
            # FastAPI's answer to a body its JSON parser gave up on (say, nested too deep).
            return _error(
                422,
                "invalid_json",
                "The request body could not be parsed as JSON.",
                {"body": "could not be parsed"},
            )
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        message = {
            404: "There is nothing here.",
            405: "This method is not allowed here.",
        }.get(exc.status_code, str(exc.detail))
        code = codes.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route on the path; a path can have several.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return _error(exc.status_code, code, message, headers=headers)

    async def _database(request: Request, exc: Exception) -> Response:
        away = database_away(exc)
        if away is None:
            return await _unexpected(request, exc)
        code, message, retry = away
        log.warning(
            "database %s on %s %s: answered 503 (%s)",
            "busy" if code == "busy" else "unreachable",
            request.method,
            request.url.path,
            describe(exc),
        )
        headers = {"Retry-After": str(retry)}
        page = as_page(request, 503, None, message)
        if page is not None:
            page.headers.update(headers)
            return page
        return _error(503, code, message, headers=headers)

    for failure in (DBAPIError, WriteBusy, PoolTimeout):
        app.add_exception_handler(failure, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "Something went wrong on our side; try again.")


BUSY_RETRY_AFTER_SECONDS = 1
BUSY_MESSAGE = "The server is too busy to take this now; try again in a moment."
# Long enough for a database restart or a failover, short enough to notice its return.
UNAVAILABLE_RETRY = 5
UNAVAILABLE_MESSAGE = (
    "The database cannot be reached just now. Try again in a moment (with the same "
    "idempotency_key for a message: if it was stored after all, it is not stored twice)."
)


def database_away(exc: BaseException) -> tuple[str, str, int] | None:
    """(code, message, Retry-After seconds) of the 503 for a database that cannot take the
    request now; None for any other failure.

    Busy: a writer waited longer than its timeout for its turn (overload, not a fault).
    Unreachable: the pool drops the dead connection and the next request tries a new one, so
    the server recovers by itself when the database returns."""
    if is_busy(exc):
        return "busy", BUSY_MESSAGE, BUSY_RETRY_AFTER_SECONDS
    if is_unreachable(exc):
        return "service_unavailable", UNAVAILABLE_MESSAGE, UNAVAILABLE_RETRY
    return None


class BodyLimit:
    """Answers 413 for a body over ``limit`` bytes, declared or streamed, before a route uses it."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        larger: dict[str, int] | None = None,
        larger_matching: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        # Paths that take more (an inbound email with its attachments), by exact path.
        self.larger = larger or {}
        # ... and by pattern (an upload into any conversation).
        self.larger_matching = tuple(larger_matching)

    def _limit_for(self, path: str) -> int:
        for pattern, limit in self.larger_matching:
            if pattern.fullmatch(path):
                return limit
        return self.larger.get(path, self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen = 0
        too_large = False
        refused = False

        async def counted() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # Whatever the app makes of the interrupted read, the client is told 413.
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send, limit)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counted, guarded)
        if too_large and not refused:
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        error = PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        body = json.dumps(error.to_body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass

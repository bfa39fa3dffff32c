"""Request ids: every response carries ``X-Request-ID``, and every log line written while a
request is handled names it (through a context variable that ``jobchat.ops.logs`` reads)."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# A caller's id is kept when it is short and made of characters that cannot forge a log line
# or a header: letters, digits and . _ : @ / + = - (a UUID, a ULID, nginx's $request_id...).
_SANE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")

current: ContextVar[str | None] = ContextVar("jobchat_request_id", default=None)
# The client's address as uvicorn gives it (after JOBCHAT_TRUSTED_PROXIES' X-Forwarded-For):
# the audit log's "from where", read by the actions without passing the request down.
client_ip: ContextVar[str | None] = ContextVar("jobchat_client_ip", default=None)

# Ids we make: a random prefix per process, then a counter. Unique across processes and
# restarts like a UUID, without a trip to the OS's random source on every request (uuid4 cost
# more than the rest of this middleware).
_prefix = ""
_counter = itertools.count(1)


def _new_process() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(8)
    _counter = itertools.count(1)


_new_process()
os.register_at_fork(after_in_child=_new_process)


def new_request_id() -> str:
    return f"{_prefix}-{next(_counter):x}"


def for_socket(scope: Scope) -> bytes:
    """What ``RequestIds`` does, for the event-stream socket, which is served outside it
    (jobchat.realtime.api): the id and the client's address set for the rest of the
    connection's own task (uvicorn runs each connection in a task of its own, so nothing else
    sees them), and the id to answer the upgrade with. No layer stays on the socket's stack for
    the hours it is open."""
    rid = request_id_of(scope.get("headers", []))
    current.set(rid)
    client = scope.get("client")
    client_ip.set(client[0] if client else None)
    return rid.encode("ascii")


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's id when it is sane, else a new one."""
    for name, value in headers:
        if name == HEADER and _SANE.fullmatch(value):
            return value.decode("ascii")
    return new_request_id()


class RequestIds:
    """Pure ASGI: sets the id for the request (or the socket's life) and answers with it.

    It sits outside every other layer (see jobchat.app), so that a 500 drawn by Starlette's
    last-resort handler carries the header too, and that handler's log line names the id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope.get("headers", []))
        raw = rid.encode("ascii")
        token = current.set(rid)
        client = scope.get("client")
        ip_token = client_ip.set(client[0] if client else None)

        async def with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", ()), (HEADER, raw)]
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            current.reset(token)
            client_ip.reset(ip_token)

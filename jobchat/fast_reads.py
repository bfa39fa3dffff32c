"""``GET /api/v1/conversations`` (the inbox) and ``GET …/conversations/{id}/messages`` (a
conversation's history), answered before FastAPI's routing when they can be.

They are the hottest reads, and FastAPI's share of one (matching the path against the routes,
solving the dependencies and validating the query, wrapping the request and the answer) was a
sixth of an inbox page's server CPU (bench/bench_reads.py --py-spy). So this layer, next to
``FastSend`` and like it innermost of the app's middlewares (request ids, metrics, the body
limit and security headers all still apply), calls the route's own function itself, on the
same threads (``jobchat.request_threads``), for a request that is plainly valid: a user token
this process has seen in the last seconds as bearer, and a query string of only the route's own
parameters, each once, each plainly in range (``limit=1..200``, a known ``filter``, a
``cursor`` of the characters the server's cursors are made of, ``before`` a positive id).

Anything else goes on to FastAPI as it came: a token not seen lately (FastAPI looks it up and
remembers it), a cookie, any other parameter, a value that is out of range or would need
decoding, a parameter given twice. So every answer but the ordinary one is FastAPI's own, and
the routes stay where OpenAPI documents them. Errors the route raises (not found, not allowed,
a cursor this server did not give out...) get the answers the app's exception handlers give them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import get_args

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from jobchat.app_state import AppState
from jobchat.auth.deps import Caller
from jobchat.conversations.api import list_conversations
from jobchat.conversations.api import router as conversations_router
from jobchat.conversations.queries import InboxFilter
from jobchat.fast_path import answer_error, bearer_token
from jobchat.inputs import MAX_ID
from jobchat.messages.api import list_messages
from jobchat.messages.api import router as messages_router

_INBOX = "/api/v1/conversations"
_HISTORY = re.compile(r"/api/v1/conversations/([1-9][0-9]{0,18})/messages")
# One parameter of a query string, as nothing but plain characters (no %-escapes, no "+").
_PARAMETER = re.compile(r"([a-z]{1,16})=([A-Za-z0-9_-]{1,400})")
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
_ID = re.compile(r"[1-9][0-9]{0,18}")
_FILTERS: dict[str, InboxFilter] = {name: name for name in get_args(InboxFilter)}
_MAX_LIMIT = 200

Read = Callable[[Caller], Response]
# The route FastAPI would have matched, its path parameters, and the call of its function.
Plain = tuple[BaseRoute, dict[str, int], Read]


def _route_of(router_routes: list[BaseRoute], endpoint: object) -> BaseRoute:
    return next(r for r in router_routes if getattr(r, "endpoint", None) is endpoint)


# The routes FastAPI would have matched (their templates name the requests in the metrics).
_INBOX_ROUTE = _route_of(conversations_router.routes, list_conversations)
_HISTORY_ROUTE = _route_of(messages_router.routes, list_messages)


class FastReads:
    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        plain = _plain_read(scope)
        token = bearer_token(scope) if plain is not None else None
        state: AppState = self.owner.state.jobchat
        user_id = state.tokens.user_id(token, state.clock.now()) if token is not None else None
        if plain is None or user_id is None:
            await self.app(scope, receive, send)
            return
        route, path_params, read = plain
        # As the router would have left them, for the metrics (the route's template) and for
        # anything reading the request (FastAPI sets the same if it answers instead).
        scope["route"] = route
        scope["endpoint"] = getattr(route, "endpoint", None)
        scope["path_params"] = path_params
        request = Request(scope, receive)
        caller = Caller(state, user_id)
        try:
            answer = await state.threads.run(lambda: read(caller))
        except Exception as exc:
            answer = await answer_error(self.owner, request, exc)
        await answer(scope, receive, send)


def _plain_read(scope: Scope) -> Plain | None:
    """The route and its call for a plainly valid inbox or history request; None for anything
    else."""
    path = get_route_path(scope)
    history = None if path == _INBOX else _HISTORY.fullmatch(path)
    if path != _INBOX and (history is None or int(history[1]) > MAX_ID):
        return None  # another route: nothing else is parsed
    params = _parameters(scope["query_string"])
    if params is None:
        return None
    limit = _limit(params.pop("limit", None))
    if limit is None:
        return None
    if history is None:
        filter_ = _FILTERS.get(params.pop("filter", "all"))
        cursor = params.pop("cursor", None)
        if params or filter_ is None:
            return None

        def inbox(caller: Caller) -> Response:
            return list_conversations(caller, filter=filter_, limit=limit, cursor=cursor)

        return _INBOX_ROUTE, {}, inbox
    conversation_id = int(history[1])
    before_text = params.pop("before", None)
    if params or (before_text is not None and _ID.fullmatch(before_text) is None):
        return None
    before = int(before_text) if before_text is not None else None
    if before is not None and before > MAX_ID:
        return None

    def page(caller: Caller) -> Response:
        return list_messages(conversation_id, caller, before=before, limit=limit)

    return _HISTORY_ROUTE, {"conversation_id": conversation_id}, page


def _parameters(query: bytes) -> dict[str, str] | None:
    """The query string's parameters, if each is plain and given once; None otherwise."""
    if not query:
        return {}
    params: dict[str, str] = {}
    for pair in query.decode("latin-1").split("&"):
        match = _PARAMETER.fullmatch(pair)
        if match is None or match[1] in params:
            return None
        params[match[1]] = match[2]
    return params


def _limit(text: str | None) -> int | None:
    """The page size (FastAPI's default, 50, when not given); None when not plainly 1..200."""
    if text is None:
        return 50
    if _LIMIT.fullmatch(text) is None or int(text) > _MAX_LIMIT:
        return None
    return int(text)

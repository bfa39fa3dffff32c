"""``POST /api/v1/conversations/{id}/messages``, answered before FastAPI's routing when it can be.

The send is the busiest write, and FastAPI's share of it (matching the path against the routes,
solving the dependencies, its telemetry hooks, wrapping the request and the answer) was a fifth
of its CPU at 32 concurrent senders (bench/bench_send.py --concurrency 32 --py-spy). So this
layer, innermost of the app's own middlewares (request ids, metrics, body limit and security
headers all still apply), answers the ordinary send itself with the route's own code
(``jobchat.messages.api.answer_send``): a JSON body that validates, with a live user token as
bearer (one this process has not seen in the last seconds is looked up on the send's thread
first, as ``require_user`` would).

Anything else goes on to FastAPI as it came, before anything was done for it (a body already read
is handed on again): no token or one that is not a live user token (FastAPI looks it up again
to say why), a session cookie, another content type, an id out of range, a body that is not
JSON or does not validate. So every answer but the ordinary one
is FastAPI's own, and the route stays where OpenAPI documents it. Errors the send itself raises
(not found, rate limited, busy...) get the answer the app's exception handlers give them.
"""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from pydantic import ValidationError
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobchat.app_state import AppState
from jobchat.auth.deps import Caller, look_up_token
from jobchat.fast_path import answer_error, bearer_token, header
from jobchat.inputs import MAX_ID
from jobchat.messages.api import answer_send, router, send_message
from jobchat.messages.schemas import SendMessageIn

_PATH = re.compile(r"/api/v1/conversations/([1-9][0-9]{0,18})/messages")
_JSON = "application/json"

# The route FastAPI would have matched (its template names the request in the metrics).
_ROUTE: BaseRoute = next(r for r in router.routes if getattr(r, "endpoint", None) is send_message)


class FastSend:
    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(get_route_path(scope))
        token = bearer_token(scope) if match is not None else None
        if match is None or token is None or int(match[1]) > MAX_ID or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        raw = await request.body()
        try:
            body = SendMessageIn.model_validate(json.loads(raw))
        except (ValueError, RecursionError, ValidationError):
            # FastAPI says what is wrong with it, in its words (jobchat.http_errors); a body
            # nested past the parser's depth is a RecursionError, not a ValueError.
            await self.app(scope, _again(raw, receive), send)
            return
        conversation_id = int(match[1])
        # As the router would have left them, for the metrics (the route's template) and for
        # anything reading the request (FastAPI sets the same if it answers instead).
        scope["route"] = _ROUTE
        scope["endpoint"] = send_message
        scope["path_params"] = {"conversation_id": conversation_id}
        state: AppState = self.owner.state.jobchat
        # A token this process knows is answered for on the loop; another is looked up on the
        # send's own thread, before the send (FastAPI's way would cost a second trip there).
        user_id = state.tokens.user_id(token, state.clock.now())
        caller = Caller(state, user_id) if user_id is not None else None
        answer: Response | None
        try:
            answer = await state.threads.run(
                lambda: _send_as(state, caller, token, conversation_id, body)
            )
        except Exception as exc:
            answer = await answer_error(self.owner, request, exc)
        if answer is None:
            # Not a live user token: FastAPI answers it (401, or 403 for the integration key),
            # looking it up again, as for any route.
            await self.app(scope, _again(raw, receive), send)
            return
        await answer(scope, receive, send)


def _send_as(
    state: AppState, caller: Caller | None, token: str, conversation_id: int, body: SendMessageIn
) -> Response | None:
    """The send's answer (on a thread of the pool), or None if ``token`` is not a live user
    token."""
    if caller is None:
        caller = look_up_token(state, token, state.clock.now())
        if caller is None:
            return None
    return answer_send(caller, conversation_id, body)


def _is_json(scope: Scope) -> bool:
    value = header(scope, b"content-type")
    if value is None:
        return False
    return value.decode("latin-1").split(";", 1)[0].strip().lower() == _JSON


def _again(raw: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then goes on to the server's (which tells
    of a disconnect)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again

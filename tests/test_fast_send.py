"""The ordinary send is answered before FastAPI's routing (jobchat.messages.fast_send): it must
be taken when it can be, step aside otherwise, and answer every request exactly as the FastAPI
route does, errors included."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.app import create_app
from jobchat.auth.deps import Bearer, Caller, require_user
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.events.models import Event, EventType
from jobchat.messages.fast_send import FastSend
from jobchat.messages.schemas import MessageOut
from tests.support import API_KEY, As, World, start

SEND_PATH = "/api/v1/conversations/{}/messages"
# What differs between two answers to the same request, whoever gives it.
_PER_ANSWER = {"date", "x-request-id", "content-length"}


def _counting_auth(app: FastAPI) -> list[int]:
    """Count the requests FastAPI authenticates (the fast path does its own)."""
    seen: list[int] = []

    async def counted(request: Request, bearer: Bearer) -> Caller:
        seen.append(1)
        return await require_user(request, bearer)

    app.dependency_overrides[require_user] = counted
    return seen


def _without_fast_send(app: FastAPI) -> FastAPI:
    """The app as it would be without the fast path (before its middleware is built)."""
    fast: object = FastSend
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast]
    return app


@pytest.fixture
def plain(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    """The same app on the same database without the fast path: FastAPI answers every send."""
    app = _without_fast_send(create_app(settings, db=db, clock=clock))
    with TestClient(app) as test_client:
        yield test_client


def test_a_send_with_a_known_token_does_not_go_through_fastapi(
    client: TestClient, world: World
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    through_fastapi = _counting_auth(client.app)  # type: ignore[arg-type]
    team = world["emp_team"]
    assert team.get("/api/v1/unread").status_code == 200  # the token is known from here on
    assert through_fastapi == [1]
    for n in range(3):
        assert team.send(conv, f"quick {n}").status_code == 201
    assert through_fastapi == [1]
    # A token this process has not seen is looked up by the fast path itself, then known.
    fresh = As(client, _new_token(client, "emp_team"))
    assert fresh.headers["Authorization"] != team.headers["Authorization"]
    assert fresh.send(conv, "first with a new token").status_code == 201
    assert fresh.send(conv, "second").status_code == 201
    assert through_fastapi == [1]
    # One that is not a live user token is FastAPI's to refuse.
    assert As(client, "not-a-token").send(conv, "nope").status_code == 401
    assert through_fastapi == [1, 1]
    bodies = [m["body"] for m in team.messages(conv).json()["items"]]
    assert bodies[-5:] == ["quick 0", "quick 1", "quick 2", "first with a new token", "second"]


def _new_token(client: TestClient, ext_id: str) -> str:
    answer = client.post(
        f"/api/v1/users/{ext_id}/tokens", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert answer.status_code in (200, 201), answer.text
    token: str = answer.json()["token"]
    return token


Request_ = Callable[[TestClient], httpx.Response]


def _send(conv: int | str, token: str, body: Any = None, **kwargs: Any) -> Request_:
    extra_headers = kwargs.pop("headers", {})

    def request(client: TestClient) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **extra_headers}
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        answer: httpx.Response = client.post(
            SEND_PATH.format(conv), headers=headers, content=content, **kwargs
        )
        return answer

    return request


def _same(fast: httpx.Response, plain: httpx.Response, *, ids: bool = True) -> None:
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    assert {k: v for k, v in fast.headers.items() if k not in _PER_ANSWER} == {
        k: v for k, v in plain.headers.items() if k not in _PER_ANSWER
    }
    if ids:
        assert fast.content == plain.content
    else:
        assert _without_ids(fast.json()) == _without_ids(plain.json())


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "created_at")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def test_every_answer_is_the_fastapi_routes_own(
    client: TestClient, plain: TestClient, world: World
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    other = start(world["sp_in"], "candidate_partner", candidate="cand")  # not emp_team's
    token = world["emp_team"].headers["Authorization"].removeprefix("Bearer ")
    for app_client in (client, plain):
        assert app_client.get("/api/v1/unread", headers={"Authorization": f"Bearer {token}"})
    cases: list[tuple[str, Request_, bool]] = [
        ("a send", _send(conv, token, {"body": "Hello"}), False),
        (
            "charset",
            _send(
                conv,
                token,
                headers={"Content-Type": "application/json; charset=utf-8"},
                body={"body": "Hi"},
            ),
            False,
        ),
        ("not a member", _send(other, token, {"body": "Hello"}), True),
        ("no such conversation", _send(987654, token, {"body": "Hello"}), True),
        ("id 0", _send(0, token, {"body": "Hello"}), True),
        ("id past the range", _send(2**63, token, {"body": "Hello"}), True),
        ("not a number", _send("abc", token, {"body": "Hello"}), True),
        ("an unknown field", _send(conv, token, {"body": "Hello", "colour": "red"}), True),
        ("no body at all", _send(conv, token, headers={"Content-Type": "application/json"}), True),
        ("an empty body", _send(conv, token, {}), True),
        ("a list", _send(conv, token, [{"body": "Hello"}]), True),
        ("not JSON", _send(conv, token, b"{body: Hello"), True),
        ("nested too deep", _send(conv, token, b"[" * 100_000), True),
        ("text", _send(conv, token, b"Hello", headers={"Content-Type": "text/plain"}), True),
        ("a blank message", _send(conv, token, {"body": "   "}), True),
        ("an unknown template", _send(conv, token, {"template": 4242}), True),
        ("a file not uploaded", _send(conv, token, {"body": "x", "attachments": [77]}), True),
        (
            "the service's own key",
            _send(conv, token, {"body": "x", "idempotency_key": "jobchat-bulk:1"}),
            True,
        ),
        (
            "a token not seen yet",
            _send(conv, _new_token(client, "emp_team"), {"body": "Hi"}),
            False,
        ),
        ("an unknown token", _send(conv, "not-a-token", {"body": "Hello"}), True),
        ("the integration key", _send(conv, API_KEY, {"body": "Hello"}), True),
        (
            "scheduled",
            _send(conv, token, {"body": "Later", "send_at": "2030-01-01T09:00:00Z"}),
            False,
        ),
        ("email with no subject", _send(conv, token, {"body": "x", "channel": "email"}), True),
    ]
    for name, request, exact in cases:
        fast, slow = request(client), request(plain)
        try:
            _same(fast, slow, ids=exact)
        except AssertionError as failed:
            raise AssertionError(f"{name}: {failed}") from failed


def test_a_retry_and_a_reused_key_answer_alike(
    client: TestClient, plain: TestClient, world: World
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    token = world["emp_team"].headers["Authorization"].removeprefix("Bearer ")
    world["emp_team"].get("/api/v1/unread")
    for name, app_client in (("fast", client), ("plain", plain)):
        key = f"retry-{name}"
        first = _send(conv, token, {"body": "Once", "idempotency_key": key})(app_client)
        again = _send(conv, token, {"body": "Once", "idempotency_key": key})(app_client)
        other = _send(conv, token, {"body": "Twice?", "idempotency_key": key})(app_client)
        assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_too_many_sends_are_refused_alike(
    settings: Settings, db: Database, clock: FrozenClock, world: World
) -> None:
    """The send rate limit's 429, from each path."""
    limited = settings.model_copy(update={"send_rate_per_minute": 2})
    conv = start(world["emp_team"], "application", application="app1")
    token = world["emp_team"].headers["Authorization"].removeprefix("Bearer ")
    answers = []
    for fast in (True, False):
        app = create_app(limited, db=db, clock=clock)
        if not fast:
            _without_fast_send(app)
        with TestClient(app) as app_client:
            app_client.get("/api/v1/unread", headers={"Authorization": f"Bearer {token}"})
            codes = [_send(conv, token, {"body": f"n{i}"})(app_client) for i in range(3)]
            assert [c.status_code for c in codes] == [201, 201, 429]
            answers.append(codes[2])
    _same(answers[0], answers[1])
    assert answers[0].json()["error"]["code"] == "rate_limited"


def test_fast_sends_are_counted_under_the_routes_template(client: TestClient, world: World) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    world["emp_team"].get("/api/v1/unread")
    for _ in range(2):
        assert world["emp_team"].send(conv, "counted").status_code == 201
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).text
    line = next(
        row
        for row in metrics.splitlines()
        if row.startswith("jobchat_http_requests_total{")
        and 'route="/api/v1/conversations/{conversation_id}/messages"' in row
        and 'method="POST"' in row
        and 'status="201"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2


def test_the_answer_is_the_message_as_staff_see_it_in_its_event_and_history(
    client: TestClient, world: World, db: Database
) -> None:
    """The send answers with its event's payload (made once a send): the same JSON, field for
    field in MessageOut's order, as the history shows staff, for a message in the app and one
    by email with its delivery; a retry's stored message is answered alike."""
    team = world["emp_team"]
    conv = start(team, "application", application="app1")
    sends = [
        {"body": "In the app"},
        {"body": "By email", "channel": "email", "subject": "Your application"},
    ]
    for sent_body in sends:
        answer = team.post(SEND_PATH.format(conv), json=sent_body)
        assert answer.status_code == 201, answer.text
        shown = answer.json()
        assert list(shown) == list(MessageOut.model_fields)
        with db.read() as session:
            data = session.execute(
                select(Event.data).where(
                    Event.message_id == shown["id"], Event.type == EventType.message_created
                )
            ).scalar_one()
        assert data == shown
        assert team.messages(conv).json()["items"][-1] == shown
        assert (shown["deliveries"] is None) == ("channel" not in sent_body)
    keyed = {"body": "Once", "idempotency_key": "answer-once"}
    first = team.post(SEND_PATH.format(conv), json=keyed)
    again = team.post(SEND_PATH.format(conv), json=keyed)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content

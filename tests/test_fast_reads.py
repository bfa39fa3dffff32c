"""The inbox and history pages are answered before FastAPI's routing (jobchat.fast_reads): taken
when the request is plainly valid with a token the process knows, left to FastAPI otherwise, and
every answer exactly the FastAPI route's own, errors included."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.auth.deps import SESSION_COOKIE, Bearer, Caller, require_user
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.fast_reads import FastReads
from tests.support import API_KEY, World, start

# What differs between two answers to the same request, whoever gives it.
_PER_ANSWER = {"date", "x-request-id", "content-length"}


def _counting_auth(app: FastAPI) -> list[str]:
    """The paths of the requests FastAPI authenticates (the fast path does its own)."""
    seen: list[str] = []

    async def counted(request: Request, bearer: Bearer) -> Caller:
        seen.append(request.url.path)
        return await require_user(request, bearer)

    app.dependency_overrides[require_user] = counted
    return seen


@pytest.fixture
def plain(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    """The same app on the same database without the fast path: FastAPI answers every read."""
    app = create_app(settings, db=db, clock=clock)
    fast: object = FastReads
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast]
    with TestClient(app) as test_client:
        yield test_client


def _token(world: World, name: str) -> str:
    return world[name].headers["Authorization"].removeprefix("Bearer ")


def _get(client: TestClient, path: str, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    answer: httpx.Response = client.get(path, headers=headers)
    return answer


def test_reads_with_a_known_token_do_not_go_through_fastapi(
    client: TestClient, world: World
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    team = world["emp_team"]
    assert team.send(conv, "Hello").status_code == 201
    through_fastapi = _counting_auth(client.app)  # type: ignore[arg-type]
    assert team.inbox().status_code == 200
    assert team.messages(conv).status_code == 200
    assert team.inbox(limit=5, filter="unread").status_code == 200
    assert team.messages(conv, limit=10, before=10_000).status_code == 200
    assert through_fastapi == []
    # Not plainly valid: FastAPI's to answer.
    assert team.inbox(kind="application").status_code == 200
    assert team.inbox(limit=0).status_code == 422
    assert through_fastapi == ["/api/v1/conversations"] * 2


def test_a_token_not_seen_yet_is_looked_up_by_fastapi_then_known(
    settings: Settings, db: Database, clock: FrozenClock, world: World
) -> None:
    token = _token(world, "emp_team")
    # A new process: it has seen no token yet.
    app = create_app(settings, db=db, clock=clock)
    through_fastapi = _counting_auth(app)
    with TestClient(app) as fresh:
        for _ in range(3):
            assert _get(fresh, "/api/v1/conversations", token).status_code == 200
    assert through_fastapi == ["/api/v1/conversations"]


def _same(fast: httpx.Response, plain: httpx.Response) -> None:
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    assert {k: v for k, v in fast.headers.items() if k not in _PER_ANSWER} == {
        k: v for k, v in plain.headers.items() if k not in _PER_ANSWER
    }
    assert fast.content == plain.content


def test_every_answer_is_the_fastapi_routes_own(
    client: TestClient, plain: TestClient, world: World
) -> None:
    team = world["emp_team"]
    conv = start(team, "application", application="app1")
    start(team, "application", application="app2")
    for n in range(4):
        assert team.send(conv, f"message {n}").status_code == 201
    other = start(world["sp_in"], "candidate_partner", candidate="cand")  # not emp_team's
    token = _token(world, "emp_team")
    for app_client in (client, plain):
        assert _get(app_client, "/api/v1/unread", token).status_code == 200
    cursor = team.inbox(limit=1).json()["next_cursor"]
    newest = team.messages(conv).json()["items"][-1]["id"]
    inbox, history = "/api/v1/conversations", f"/api/v1/conversations/{conv}/messages"
    cases: list[tuple[str, str | None, dict[str, str]]] = [
        (inbox, token, {}),
        (f"{inbox}?limit=1", token, {}),
        (f"{inbox}?limit=200&filter=unread", token, {}),
        (f"{inbox}?filter=ended", token, {}),
        (f"{inbox}?filter=messaged&limit=3", token, {}),
        (f"{inbox}?limit=1&cursor={cursor}", token, {}),
        (f"{inbox}?cursor=abc", token, {}),  # not a cursor this server gave out: the route's 422
        (f"{inbox}?cursor={cursor}%3D", token, {}),
        (f"{inbox}?limit=0", token, {}),
        (f"{inbox}?limit=201", token, {}),
        (f"{inbox}?limit=05", token, {}),
        (f"{inbox}?limit=abc", token, {}),
        (f"{inbox}?limit=", token, {}),
        (f"{inbox}?limit=5&limit=6", token, {}),
        (f"{inbox}?filter=bogus", token, {}),
        (f"{inbox}?filter=%75nread", token, {}),
        (f"{inbox}?kind=application", token, {}),
        (f"{inbox}?colour=red", token, {}),
        (f"{inbox}?&", token, {}),
        (inbox, None, {}),
        (inbox, "not-a-token", {}),
        (inbox, API_KEY, {}),
        (inbox, None, {"Cookie": f"{SESSION_COOKIE}=not-a-session"}),
        (history, token, {}),
        (f"{history}?limit=2", token, {}),
        (f"{history}?limit=2&before={newest}", token, {}),
        (f"{history}?before=1", token, {}),
        (f"{history}?before=0", token, {}),
        (f"{history}?before={2**63}", token, {}),
        (f"{history}?before=abc", token, {}),
        (f"{history}?limit=201", token, {}),
        (f"{history}?filter=unread", token, {}),
        (f"/api/v1/conversations/{other}/messages", token, {}),
        ("/api/v1/conversations/987654/messages", token, {}),
        ("/api/v1/conversations/0/messages", token, {}),
        (f"/api/v1/conversations/{2**63}/messages", token, {}),
        ("/api/v1/conversations/abc/messages", token, {}),
        (history, "not-a-token", {}),
    ]
    for path, bearer, headers in cases:
        fast, slow = _get(client, path, bearer, **headers), _get(plain, path, bearer, **headers)
        try:
            _same(fast, slow)
        except AssertionError as failed:
            raise AssertionError(f"{path} ({bearer and bearer[:8]}): {failed}") from failed


def test_fast_reads_are_counted_under_the_routes_template(client: TestClient, world: World) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    world["emp_team"].get("/api/v1/unread")
    for _ in range(2):
        assert world["emp_team"].messages(conv).status_code == 200
        assert world["emp_team"].inbox().status_code == 200
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).text
    for route in ("/api/v1/conversations/{conversation_id}/messages", "/api/v1/conversations"):
        line = next(
            row
            for row in metrics.splitlines()
            if row.startswith("jobchat_http_requests_total{")
            and f'route="{route}"' in row
            and 'method="GET"' in row
            and 'status="200"' in row
        )
        assert float(line.rsplit(" ", 1)[1]) >= 2, line

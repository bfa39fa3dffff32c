"""Every answer carries the security headers once each (jobchat.web.security), the send answered
before FastAPI's routing, a FastAPI route and an error alike."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from jobchat.web.security import CSP
from tests.support import World, start

_OURS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
}


def _ours_once(answer: httpx.Response) -> dict[str, list[str]]:
    return {name: answer.headers.get_list(name) for name in _OURS}


def test_each_answer_has_each_header_once(client: TestClient, world: World) -> None:
    team = world["emp_team"]
    conv = start(team, "application", application="app1")
    team.get("/api/v1/unread")  # the token known: the send takes the fast path
    answers = {
        "send": team.send(conv, "Hello"),
        "history": team.messages(conv),
        "me": team.get("/api/v1/me"),
        "not found": team.get("/api/v1/conversations/987654"),
        "no token": client.get("/api/v1/me"),
    }
    for name, answer in answers.items():
        assert _ours_once(answer) == {k: [v] for k, v in _OURS.items()}, name

"""The OpenAPI document at /openapi.json tells the truth: every status an operation answers is
listed, in the one error shape, and schema names are unique. And what the README says of a PUT
(fields left out, fields required) is what the server does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.ops.openapi import PROBES
from tests.support import API_KEY, World, assert_error, body

Operation = tuple[str, str, dict[str, Any]]  # method, path, the operation object


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return body(client.get("/openapi.json"), 200)


def operations(spec: dict[str, Any]) -> list[Operation]:
    """Every operation but the health probes, which document their own answers
    (tests/test_ops_health.py)."""
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "put", "post", "patch", "delete") and path not in PROBES
    ]


def documented(op: dict[str, Any]) -> set[int]:
    return {int(status) for status in op["responses"]}


def test_schema_names_are_unique_and_every_reference_resolves(spec: dict[str, Any]) -> None:
    names = list(spec["components"]["schemas"])
    # FastAPI names clashing models by their module path ("jobchat__jobqueue__api__JobOut").
    assert not [n for n in names if "__" in n or "." in n], names
    assert "JobOut" in names and "BackgroundJobOut" in names
    refs = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", str(spec)))
    assert refs <= set(names), refs - set(names)


def test_every_error_answer_is_in_the_error_shape(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        for status, answer in op["responses"].items():
            if int(status) < 400:
                continue
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)


def test_statuses_that_follow_from_a_routes_shape_are_listed(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        where = f"{method.upper()} {path}"
        statuses = documented(op)
        assert 503 in statuses, where
        assert "Retry-After" in op["responses"]["503"]["headers"], where
        if op.get("security"):
            assert {401, 403} <= statuses, where
        if op.get("parameters") or "requestBody" in op:
            assert 422 in statuses, where
        if "requestBody" in op:
            assert 413 in statuses, where


def test_the_statuses_of_particular_routes_are_listed(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    send = paths["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert {404, 409, 413, 422, 429} <= documented(send)
    assert {403, 404} <= documented(paths["/api/v1/conversations/{conversation_id}/end"]["post"])
    assert {403, 404} <= documented(paths["/api/v1/messages/{message_id}"]["delete"])
    assert 409 in documented(paths["/api/v1/applications/{ext_id}"]["put"])
    assert 415 in documented(paths["/api/v1/inbound/email"]["post"])
    for hook in ("/api/v1/inbound/sms/twilio", "/api/v1/inbound/sms/twilio/status"):
        assert {403, 413} <= documented(paths[hook]["post"]), hook
    # Statuses a route cannot give are not claimed: GET /me reads no input.
    assert 422 not in documented(paths["/api/v1/me"]["get"])


def _concrete(path: str) -> str:
    path = path.replace("{conversation_id}", "999999").replace("{message_id}", "999999")
    return path.replace("{ext_id}", "no-such-id")


def test_what_each_operation_answers_is_what_it_documents(
    spec: dict[str, Any], world: World, client: TestClient
) -> None:
    """Every operation, called without credentials, with the wrong kind, with a bad body and
    with one too large: each status it answers is one its document lists."""
    staff = world["emp_team"].headers
    credentials = [{}, {"Authorization": "Bearer not-a-token"}, staff]
    credentials.append({"Authorization": f"Bearer {API_KEY}"})
    undocumented = []
    for method, path, op in operations(spec):
        url = _concrete(path)
        bodies: list[Any] = [None]
        if "requestBody" in op:
            bodies += [{"unexpected": True}, {"padding": "x" * 200_000}]
        for headers in credentials:
            for sent in bodies:
                answer = client.request(method, url, headers=headers, json=sent)
                if answer.status_code >= 400:
                    assert_error(answer, answer.status_code)
                if answer.status_code not in documented(op):
                    undocumented.append((method.upper(), path, answer.status_code, answer.text))
    assert not undocumented, undocumented


# --- the README's account of PUT -----------------------------------------------------------------


def test_a_put_keeps_what_it_leaves_out_but_not_what_is_required(
    world: World, client: TestClient
) -> None:
    """Required fields are required on every PUT, an update too (422 names each one missing);
    an optional field left out keeps its stored value; null clears it."""
    integration = world.api.integration
    candidate = "/api/v1/candidates/cand"
    who = {"name": "Carla C", "email": "carla@example.org"}

    # Optional fields left out keep their value.
    assert body(integration.put(candidate, who), 200)["phone"] == "+14155550123"
    job = body(integration.put("/api/v1/jobs/job1", {"title": "RN", "employer": "acme"}), 200)
    assert job["team"] == ["emp_team"]

    # Required ones may not be left out, even on an update.
    only_phone = integration.put(candidate, {"phone": "+14155550199"})
    assert_error(only_phone, 422, fields={"name", "email"})
    only_team = integration.put("/api/v1/jobs/job1", {"team": []})
    assert_error(only_team, 422, fields={"title", "employer"})
    only_name = integration.put("/api/v1/users/emp_team", {"name": "Tess T"})
    assert_error(only_name, 422, fields={"email", "organization", "role"})

    # null clears an optional field.
    assert body(integration.put(candidate, who | {"phone": None}), 200)["phone"] is None

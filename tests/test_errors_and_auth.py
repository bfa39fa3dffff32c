"""Errors, authentication, integration upserts, tokens and sign-in links, hostile input.

Every failure answers one JSON shape, ``{"error": {"code", "message", "fields"?}}``, with the
status the contract names, and nothing a client sends ever produces a 500.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from jobchat.app import create_app
from jobchat.auth.csrf import csrf_token
from jobchat.auth.models import Credential
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.messages.models import Message
from tests.support import (
    API_KEY,
    CONTRACT_STATUSES,
    Api,
    As,
    World,
    assert_error,
    build_world,
    error_problems,
)

# --- the one error shape -------------------------------------------------------------------------

# --- helpers -------------------------------------------------------------------------------------


def anonymous(client: TestClient) -> As:
    """Requests with no Authorization header at all."""
    who = As(client, "unused")
    who.headers = {}
    return who


def application_conversation(world: World) -> int:
    r = world["emp_team"].start("application", application="app1")
    assert r.status_code == 201, r.text
    conv_id: int = r.json()["id"]
    return conv_id


def browser_for(client: TestClient) -> TestClient:
    """A second client on the same app with its own cookie jar, like a user's browser."""
    return TestClient(client.app, base_url="http://testserver")


# --- 401 and 403 ---------------------------------------------------------------------------------


def test_user_endpoints_answer_401_without_credentials(world: World, client: TestClient) -> None:
    """No Authorization header and no session cookie: 401, saying how to authenticate."""
    conv_id = application_conversation(world)
    nobody = anonymous(client)
    for r in (
        nobody.get("/api/v1/me"),
        nobody.inbox(),
        nobody.get(f"/api/v1/conversations/{conv_id}"),
        nobody.messages(conv_id),
        nobody.send(conv_id, "Hi"),
        nobody.get("/api/v1/unread"),
        nobody.patch("/api/v1/me", {"timezone": "Europe/Berlin"}),
    ):
        assert_error(r, 401, "unauthorized")
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-real-token",
        "Bearer jct_" + "A" * 43,
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
    ],
)
def test_user_endpoints_answer_401_for_a_bad_token(client: TestClient, authorization: str) -> None:
    """A token that is not one we issued, or another scheme than Bearer, is a 401."""
    r = client.get("/api/v1/me", headers={"Authorization": authorization})
    assert_error(r, 401, "unauthorized")


def test_integration_endpoints_answer_401_without_a_key(client: TestClient) -> None:
    """The integration endpoints refuse a caller with no key or a wrong one."""
    body = {"name": "Acme", "kind": "employer"}
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic eDp5"}):
        assert_error(client.put("/api/v1/organizations/acme", json=body, headers=headers), 401)
        assert_error(client.post("/api/v1/users/u1/tokens", headers=headers), 401)
        assert_error(client.post("/api/v1/candidates/c1/login-links", headers=headers), 401)
    # Nothing was created by the refused calls.
    r = client.put("/api/v1/organizations/acme", json=body, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    r = client.put(
        "/api/v1/organizations/acme",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert r.status_code == 201, r.text


def test_integration_key_on_a_user_endpoint_is_403(world: World, api: Api) -> None:
    """The integration key is valid, but reads no conversations: 403, not 401."""
    conv_id = application_conversation(world)
    key = api.integration
    for r in (
        key.get("/api/v1/me"),
        key.inbox(),
        key.get(f"/api/v1/conversations/{conv_id}"),
        key.send(conv_id, "Hi"),
        key.get("/api/v1/unread"),
    ):
        assert_error(r, 403)


def test_user_token_on_an_integration_endpoint_is_403(world: World) -> None:
    """A valid user token may not call the integration endpoints: 403."""
    admin = world["emp_admin"]
    assert_error(admin.put("/api/v1/organizations/x", {"name": "X", "kind": "employer"}), 403)
    assert_error(admin.post("/api/v1/users/emp_admin/tokens"), 403)
    assert_error(admin.post("/api/v1/candidates/cand/login-links"), 403)
    cand = world["cand"]
    assert_error(cand.put("/api/v1/candidates/cand", {"name": "Me", "email": "me@x.org"}), 403)


# --- 404: missing and invisible are indistinguishable --------------------------------------------


def test_invisible_conversation_is_the_same_404_as_a_missing_one(world: World) -> None:
    """For an outsider, a conversation that exists answers exactly like one that does not."""
    conv_id = application_conversation(world)
    sent = world["emp_team"].send(conv_id, "Private")
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["id"]
    missing_conv = conv_id + 1000
    missing_message = message_id + 1000
    for role in ("other_emp", "sp_out", "cand2", "agency_other", "emp_other"):
        who = world[role]
        pairs: list[tuple[httpx.Response, httpx.Response]] = [
            (who.get(f"/api/v1/conversations/{conv_id}"),
             who.get(f"/api/v1/conversations/{missing_conv}")),
            (who.messages(conv_id), who.messages(missing_conv)),
            (who.send(conv_id, "Hi"), who.send(missing_conv, "Hi")),
            (who.post(f"/api/v1/conversations/{conv_id}/read"),
             who.post(f"/api/v1/conversations/{missing_conv}/read")),
            (who.post(f"/api/v1/conversations/{conv_id}/end"),
             who.post(f"/api/v1/conversations/{missing_conv}/end")),
            (who.delete(f"/api/v1/messages/{message_id}"),
             who.delete(f"/api/v1/messages/{missing_message}")),
            (who.delete(f"/api/v1/messages/{message_id}", **{"for": "everyone"}),
             who.delete(f"/api/v1/messages/{missing_message}", **{"for": "everyone"})),
        ]  # fmt: skip
        for hidden, missing in pairs:
            assert_error(hidden, 404, "not_found")
            assert_error(missing, 404, "not_found")
            assert hidden.content == missing.content, (role, hidden.text, missing.text)
            assert hidden.headers["content-type"] == missing.headers["content-type"]
    # The outsiders' attempts changed nothing.
    history = world["emp_team"].messages(conv_id).json()["items"]
    assert [m["body"] for m in history] == ["Private"]


def test_starting_on_an_invisible_application_is_the_same_404_as_on_a_missing_one(
    world: World,
) -> None:
    """Starting a conversation about an application one cannot see reveals nothing about it."""
    outsider = world["other_emp"]
    hidden = outsider.start("application", application="app1")
    missing = outsider.start("application", application="no-such-application")
    assert_error(hidden, 404, "not_found")
    assert hidden.content == missing.content


# --- 413 -----------------------------------------------------------------------------------------


def test_body_over_64_kib_is_413_with_content_length(world: World) -> None:
    """A declared body over 64 KiB is refused with 413 before anything reads it."""
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    big = {"body": "x" * (64 * 1024)}
    r = emp.send(conv_id, **big)
    assert int(r.request.headers["content-length"]) > 64 * 1024
    assert_error(r, 413, "payload_too_large")
    r = emp.put("/api/v1/organizations/big", {"name": "x" * 70_000, "kind": "employer"})
    assert_error(r, 413, "payload_too_large")
    assert emp.messages(conv_id).json()["items"] == []


def test_body_over_64_kib_is_413_when_streamed(world: World) -> None:
    """A chunked body with no Content-Length is counted as it arrives and refused past 64 KiB."""
    conv_id = application_conversation(world)
    emp = world["emp_team"]

    def chunks() -> Iterator[bytes]:
        yield b'{"body": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    r = emp.client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        content=chunks(),
        headers=emp.headers | {"Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert_error(r, 413, "payload_too_large")
    assert emp.messages(conv_id).json()["items"] == []


def test_body_just_under_the_limit_is_not_413(world: World) -> None:
    """A body under 64 KiB is read and judged on its content (here: too long a message, 422)."""
    conv_id = application_conversation(world)
    r = world["emp_team"].send(conv_id, "z" * 60_000)
    assert_error(r, 422, fields={"body"})


# --- 422 for malformed input ---------------------------------------------------------------------


def test_invalid_json_is_422(world: World) -> None:
    """A body that is not JSON at all gets 422 with a code that says so."""
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    for raw in (b'{"body": "Hi"', b"not json", b'{"body": "Hi"} trailing', b"{'body': 'Hi'}"):
        r = emp.client.post(
            f"/api/v1/conversations/{conv_id}/messages",
            content=raw,
            headers=emp.headers | {"Content-Type": "application/json"},
        )
        assert_error(r, 422, "invalid_json")
    assert emp.messages(conv_id).json()["items"] == []


def test_unknown_fields_are_422(world: World, api: Api) -> None:
    """A field the endpoint does not know is refused and named, not silently dropped."""
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    assert_error(emp.send(conv_id, "Hi", colour="blue"), 422, fields={"colour"})
    assert_error(emp.start("application", application="app1", extra="x"), 422, fields={"extra"})
    assert_error(
        emp.post(f"/api/v1/conversations/{conv_id}/read", {"up_to": None, "all": True}),
        422,
        fields={"all"},
    )
    assert_error(emp.patch("/api/v1/me", {"theme": "dark"}), 422, fields={"theme"})
    r = api.integration.put(
        "/api/v1/organizations/acme", {"name": "Acme", "kind": "employer", "country": "DE"}
    )
    assert_error(r, 422, fields={"country"})
    assert emp.messages(conv_id).json()["items"] == []


def test_unknown_stage_is_422(world: World, api: Api) -> None:
    """An application stage outside the list is refused, naming ``stage``; nothing changes."""
    r = api.integration.put(
        "/api/v1/applications/app2", {"job": "job1", "candidate": "cand2", "stage": "on_hold"}
    )
    assert_error(r, 422, fields={"stage"})
    r = api.integration.put(
        "/api/v1/applications/app2", {"job": "job1", "candidate": "cand2", "stage": "interview"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "interview"


def test_timezone_must_be_an_iana_name(world: World) -> None:
    """PATCH /me refuses an unknown timezone (naming it) and stores a valid IANA one."""
    me = world["cand"]
    for bad in ("Mars/Olympus_Mons", "", "UTC+2", "../../etc/localtime", "europe/berlin"):
        assert_error(me.patch("/api/v1/me", {"timezone": bad}), 422, fields={"timezone"})
    assert me.get("/api/v1/me").json()["timezone"] == "UTC"
    r = me.patch("/api/v1/me", {"timezone": "Europe/Berlin"})
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "Europe/Berlin"
    assert me.get("/api/v1/me").json()["timezone"] == "Europe/Berlin"
    r = me.patch("/api/v1/me", {"timezone": "America/Argentina/Buenos_Aires"})
    assert r.json()["timezone"] == "America/Argentina/Buenos_Aires"


def test_email_notifications_toggle(world: World) -> None:
    """email_notifications is on by default and can be switched off and on again."""
    me = world["emp_team"]
    assert me.get("/api/v1/me").json()["email_notifications"] is True
    r = me.patch("/api/v1/me", {"email_notifications": False})
    assert r.status_code == 200, r.text
    assert r.json()["email_notifications"] is False
    assert me.get("/api/v1/me").json()["email_notifications"] is False
    # Leaving it out of a PATCH keeps it.
    me.patch("/api/v1/me", {"timezone": "Asia/Tokyo"})
    assert me.get("/api/v1/me").json()["email_notifications"] is False
    r = me.patch("/api/v1/me", {"email_notifications": True})
    assert r.json()["email_notifications"] is True
    assert_error(me.patch("/api/v1/me", {"email_notifications": "maybe"}), 422)


def test_bad_limit_is_422(world: World) -> None:
    """limit must be a whole number from 1 to 200, on every listing."""
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    for limit in ("0", "1000", "abc", "-5", "1.5", "201", ""):
        assert_error(emp.inbox(limit=limit), 422, fields={"limit"})
        assert_error(emp.messages(conv_id, limit=limit), 422, fields={"limit"})
        assert_error(emp.get("/api/v1/candidates", limit=limit), 422, fields={"limit"})
    for limit in ("1", "200"):
        assert emp.inbox(limit=limit).status_code == 200
        assert emp.messages(conv_id, limit=limit).status_code == 200


def test_unknown_route_is_404_in_the_error_shape(world: World, client: TestClient) -> None:
    """A path that is not a route answers 404 in the one shape, signed in or not."""
    assert_error(world["emp_team"].get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.post("/api/v2/conversations", json={}), 404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(world: World) -> None:
    """A known path with the wrong method answers 405 in the one shape."""
    emp = world["emp_team"]
    assert_error(emp.delete("/api/v1/me"), 405, "method_not_allowed")
    assert_error(emp.put("/api/v1/conversations", {}), 405, "method_not_allowed")
    assert_error(emp.get("/api/v1/messages/1"), 405, "method_not_allowed")


def test_405_names_the_allowed_methods(world: World) -> None:
    """A 405 carries the Allow header (RFC 9110 requires it), so a client knows what works."""
    r = world["emp_team"].delete("/api/v1/me")
    assert r.status_code == 405
    allowed = {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}
    assert {"GET", "PATCH"} <= allowed, r.headers


# --- integration upserts -------------------------------------------------------------------------


def test_upserts_answer_201_on_create_and_200_on_update(api: Api) -> None:
    """Each upsert creates with 201, updates with 200, and answers the stored object."""
    key = api.integration
    r = key.put("/api/v1/organizations/o1", {"name": "Org One", "kind": "employer"})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "o1", "name": "Org One", "kind": "employer"}
    r = key.put("/api/v1/organizations/o1", {"name": "Org 1", "kind": "employer"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "o1", "name": "Org 1", "kind": "employer"}
    key.put("/api/v1/organizations/p1", {"name": "Partner", "kind": "source_partner"})

    staff = {"name": "Ann", "email": "ann@example.com", "organization": "o1", "role": "member"}
    r = key.put("/api/v1/users/u1", staff)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "u1" and r.json()["role"] == "member"
    r = key.put("/api/v1/users/u1", staff | {"role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "admin"

    cand = {"name": "Cy", "email": "cy@example.org", "source_partner": "p1"}
    r = key.put("/api/v1/candidates/c1", cand)
    assert r.status_code == 201, r.text
    assert r.json()["source_partner"] == "p1"
    r = key.put("/api/v1/candidates/c1", cand | {"name": "Cyrus"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Cyrus"

    r = key.put("/api/v1/jobs/j1", {"title": "Nurse", "employer": "o1", "team": ["u1"]})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "j1", "title": "Nurse", "employer": "o1", "team": ["u1"],
                        "partners": [], "status": "open"}  # fmt: skip
    r = key.put("/api/v1/jobs/j1", {"title": "Senior Nurse", "employer": "o1", "partners": ["p1"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "j1", "title": "Senior Nurse", "employer": "o1", "team": ["u1"],
                        "partners": ["p1"], "status": "open"}  # fmt: skip

    application = {"job": "j1", "candidate": "c1", "stage": "applied"}
    r = key.put("/api/v1/applications/a1", application)
    assert r.status_code == 201, r.text
    assert r.json()["stage"] == "applied" and r.json()["applied_at"].startswith("2026-01-05T09:00")
    r = key.put("/api/v1/applications/a1", application | {"stage": "screening"})
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "screening"


def test_upserts_with_unknown_references_are_422_naming_them(world: World, api: Api) -> None:
    """A reference to an organisation or user that does not exist is named in ``fields``."""
    key = api.integration
    staff = {"name": "Ann", "email": "ann@example.com", "organization": "nope", "role": "member"}
    assert_error(key.put("/api/v1/users/u1", staff), 422, fields={"organization"})
    cand = {"name": "Cy", "email": "cy@example.org", "source_partner": "nope"}
    assert_error(key.put("/api/v1/candidates/c1", cand), 422, fields={"source_partner"})
    assert_error(
        key.put("/api/v1/jobs/j9", {"title": "T", "employer": "nope"}), 422, fields={"employer"}
    )
    assert_error(
        key.put("/api/v1/jobs/j9", {"title": "T", "employer": "acme", "team": ["nobody"]}),
        422,
        fields={"team"},
    )
    assert_error(
        key.put("/api/v1/jobs/j9", {"title": "T", "employer": "acme", "partners": ["nope"]}),
        422,
        fields={"partners"},
    )
    assert_error(
        key.put(
            "/api/v1/applications/a9", {"job": "nope", "candidate": "nobody", "stage": "applied"}
        ),
        422,
        fields={"job", "candidate"},
    )
    base = {"job": "job1", "candidate": "cand2", "stage": "interview"}
    assert_error(
        key.put("/api/v1/applications/app2", base | {"stage_owner": "nobody"}),
        422,
        fields={"stage_owner"},
    )
    assert_error(
        key.put("/api/v1/applications/app2", base | {"agency_user": "nobody"}),
        422,
        fields={"agency_user"},
    )
    # Nothing was created by the refused upserts.
    for path in ("/api/v1/users/u1/tokens", "/api/v1/candidates/c1/tokens"):
        assert_error(key.post(path), 404, "not_found")


def test_an_invalid_staff_phone_is_422_and_a_candidates_is_kept_flagged(
    world: World, api: Api
) -> None:
    """A staff phone number that is not valid is refused, naming ``phone``; a candidate's is
    kept as sent and flagged (the ATS has it from the candidate; SMS to it answers 422)."""
    key = api.integration
    for bad in ("12", "not a phone", "+999 123", "555-0100-555-0100-99"):
        staff = {"name": "Tess", "email": "t@x.com", "organization": "acme", "role": "member"}
        assert_error(
            key.put("/api/v1/users/emp_team", staff | {"phone": bad}), 422, fields={"phone"}
        )
        candidate = key.put(
            "/api/v1/candidates/cand", {"name": "Carla", "email": "c@x.org", "phone": bad}
        )
        assert candidate.status_code == 200, candidate.text
        assert candidate.json()["phone"] == bad
        assert candidate.json()["phone_problem"].startswith("is not a valid phone number")


def test_phone_is_normalised_to_e164(api: Api) -> None:
    """Phone numbers are answered (and stored) in E.164, whatever the input's formatting."""
    key = api.integration
    cases = {
        "(415) 555-0188": "+14155550188",
        "+44 20 7946 0958": "+442079460958",
        "+1 415-555-0100": "+14155550100",
    }
    for i, (raw, e164) in enumerate(cases.items()):
        r = key.put(f"/api/v1/candidates/n{i}", {"name": "N", "email": "n@x.org", "phone": raw})
        assert r.status_code == 201, r.text
        assert r.json()["phone"] == e164
    api.org("acme", "Acme", "employer")
    staff = {"name": "S", "email": "s@x.com", "organization": "acme", "role": "member"}
    r = key.put("/api/v1/users/s1", staff | {"phone": "415.555.0177"})
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "+14155550177"
    me = api.as_candidate("n0").get("/api/v1/me").json()
    assert me["phone"] == "+14155550188"


def test_team_member_must_be_staff_of_the_employer(world: World, api: Api) -> None:
    """A job's team holds only the employer's own staff; anyone else is a 422 on ``team``."""
    key = api.integration
    for outsider in ("sp_in", "other_emp", "agency_user"):
        r = key.put(
            "/api/v1/jobs/job1", {"title": "Registered Nurse", "employer": "acme",
                                  "team": ["emp_team", outsider]},
        )  # fmt: skip
        assert_error(r, 422, fields={"team"})
    r = key.put("/api/v1/jobs/job1", {"title": "Registered Nurse", "employer": "acme"})
    assert r.json()["team"] == ["emp_team"]


def test_changing_an_applications_job_is_409(world: World, api: Api) -> None:
    """An application belongs to one job for good: moving it to another job is a conflict."""
    api.job("job2", "Midwife", "acme")
    r = api.integration.put(
        "/api/v1/applications/app1", {"job": "job2", "candidate": "cand", "stage": "offer"}
    )
    assert_error(r, 409)
    # app1 is unchanged: still on job1, still at offer_accepted.
    r = api.integration.put(
        "/api/v1/applications/app1", {"job": "job1", "candidate": "cand", "stage": "offer_accepted"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["job"] == "job1" and r.json()["stage_owner"] == "emp_team"


# --- tokens and sign-in links --------------------------------------------------------------------


def _credential_texts(db: Database) -> list[str]:
    """Every value of every column of the credential tables, as text."""
    values: list[str] = []
    with db.read() as s:
        for table in ("credentials", "api_keys"):
            for row in s.execute(text(f"SELECT * FROM {table}")):
                values.extend(str(v) for v in row)
    return values


def test_tokens_work_and_only_their_digest_is_stored(world: World, api: Api, db: Database) -> None:
    """Issued tokens act as their user; the database keeps a SHA-256 digest, never the token."""
    key = api.integration
    r = key.post("/api/v1/users/emp_team/tokens")
    assert r.status_code == 201, r.text
    staff_token = r.json()["token"]
    r = key.post("/api/v1/candidates/cand/tokens")
    assert r.status_code == 201, r.text
    cand_token = r.json()["token"]
    assert staff_token != cand_token

    me = As(api.client, staff_token).get("/api/v1/me").json()
    assert (me["id"], me["kind"]) == ("emp_team", "staff")
    me = As(api.client, cand_token).get("/api/v1/me").json()
    assert (me["id"], me["kind"]) == ("cand", "candidate")

    # Staff and candidates are separate id spaces; unknown ids are 404.
    assert_error(key.post("/api/v1/users/cand/tokens"), 404, "not_found")
    assert_error(key.post("/api/v1/candidates/emp_team/tokens"), 404, "not_found")
    assert_error(key.post("/api/v1/users/nobody/tokens"), 404, "not_found")
    assert_error(key.post("/api/v1/users/nobody/login-links"), 404, "not_found")
    assert_error(key.post("/api/v1/candidates/emp_team/login-links"), 404, "not_found")

    with db.read() as s:
        hashes = set(s.scalars(select(Credential.secret_hash)))
    for token in (staff_token, cand_token):
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
    stored = _credential_texts(db)
    assert stored
    for token in (staff_token, cand_token):
        assert not any(token in value for value in stored)


def _login_link(api: Api, path: str) -> str:
    r = api.integration.post(path)
    assert r.status_code == 201, r.text
    url: str = r.json()["url"]
    return url


def test_login_link_signs_in_once(
    world: World, api: Api, client: TestClient, db: Database, clock: FrozenClock
) -> None:
    """A sign-in link redirects to / with an HttpOnly session cookie that lasts 14 days, and
    the link works only once."""
    url = _login_link(api, "/api/v1/candidates/cand/login-links")
    assert url.startswith("http://testserver/login/")
    browser = browser_for(client)

    r = browser.get(url, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("jobchat_session=")
    assert "httponly" in set_cookie.lower()
    session_secret = r.cookies["jobchat_session"]

    page = browser.get("/inbox")
    assert page.status_code == 200
    assert signed_in_as(page.text) == "Carla Candidate"

    me = browser.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == "cand"

    again = TestClient(client.app).get(url, follow_redirects=False)
    assert again.status_code == 404
    assert "set-cookie" not in again.headers
    assert signed_in_as(again.text) is None

    # The session lasts 14 days.
    clock.advance(days=14, seconds=1)
    assert_error(browser.get("/api/v1/me"), 401)
    assert browser.get("/inbox").status_code == 401

    # Neither the link's secret nor the session's is stored in plain text.
    link_secret = urlsplit(url).path.rsplit("/", 1)[1]
    stored = _credential_texts(db)
    assert not any(link_secret in v or session_secret in v for v in stored)


def test_staff_login_link_names_the_staff_user(world: World, api: Api, client: TestClient) -> None:
    """A staff user's link signs in that staff user."""
    url = _login_link(api, "/api/v1/users/emp_admin/login-links")
    browser = browser_for(client)
    assert browser.get(url, follow_redirects=False).status_code == 303
    assert signed_in_as(browser.get("/inbox").text) == "Ada Admin"
    assert browser.get("/api/v1/me").json()["id"] == "emp_admin"


def test_login_link_expires_after_15_minutes(
    world: World, api: Api, client: TestClient, clock: FrozenClock
) -> None:
    """A link not used within 15 minutes no longer signs anyone in."""
    fresh = _login_link(api, "/api/v1/candidates/cand/login-links")
    stale = _login_link(api, "/api/v1/candidates/cand/login-links")
    clock.advance(minutes=14, seconds=59)
    assert browser_for(client).get(fresh, follow_redirects=False).status_code == 303
    clock.advance(seconds=2)
    browser = browser_for(client)
    r = browser.get(stale, follow_redirects=False)
    assert r.status_code == 404
    assert "set-cookie" not in r.headers
    assert browser.get("/inbox").status_code == 401
    assert_error(browser.get("/api/v1/me"), 401)


def test_session_cookie_refuses_cross_site_writes(
    world: World, api: Api, client: TestClient
) -> None:
    """A cookie-authenticated write with a foreign Origin is refused (403) and changes nothing."""
    conv_id = application_conversation(world)
    browser = browser_for(client)
    browser.get(_login_link(api, "/api/v1/candidates/cand/login-links"), follow_redirects=False)
    path = f"/api/v1/conversations/{conv_id}/messages"

    r = browser.post(path, json={"body": "forged"}, headers={"Origin": "https://evil.example"})
    assert_error(r, 403)
    r = browser.patch(
        "/api/v1/me", json={"timezone": "Asia/Tokyo"}, headers={"Origin": "https://evil.example"}
    )
    assert_error(r, 403)
    assert browser.get("/api/v1/me").json()["timezone"] == "UTC"
    assert world["emp_team"].messages(conv_id).json()["items"] == []

    r = browser.post(path, json={"body": "forged"}, headers={"Referer": "https://evil.example/x"})
    assert_error(r, 403)
    assert world["emp_team"].messages(conv_id).json()["items"] == []

    # Our own origin, but without the session's CSRF token: refused too.
    r = browser.post(path, json={"body": "mine"}, headers={"Origin": "http://testserver"})
    assert_error(r, 403, "csrf_failed")
    r = browser.post(
        path,
        json={"body": "mine"},
        headers={"Origin": "http://testserver", "X-CSRF-Token": "made-up"},
    )
    assert_error(r, 403, "csrf_failed")
    assert world["emp_team"].messages(conv_id).json()["items"] == []

    token = csrf_token(browser.cookies["jobchat_session"])
    r = browser.post(
        path, json={"body": "mine"}, headers={"Origin": "http://testserver", "X-CSRF-Token": token}
    )
    assert r.status_code == 201, r.text
    assert r.json()["author"]["id"] == "cand"


def signed_in_as(html: str) -> str | None:
    """The name a page's header shows as signed in, if any."""
    found = re.search(r'class="whoami-name">([^<]*)<', html)
    return found.group(1) if found else None


# --- hostile input -------------------------------------------------------------------------------

_DEEP = 60
HOSTILE: list[Any] = [
    2**63,
    10**40,
    -(2**63) - 1,
    -1,
    0,
    1.5,
    1e308,
    True,
    None,
    "",
    "   ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: a valid JSON escape, but not encodable as UTF-8
    "💥" * 300,
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "\u202eevil\u202c",
    "x" * 5000,
    "../../etc/passwd",
    "' OR '1'='1",
    "%00",
    "<script>alert(1)</script>",
    "9223372036854775808",
    "-1",
    [],
    {},
    {"$gt": ""},
    [["nested"] * 3] * 3,
    json.loads("[" * _DEEP + "]" * _DEEP),
]

RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"string"',
    b"NaN",
    b'{"body": NaN}',
    b'{"body": "x", "body": 5}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe\x00garbage",
    b"[" * 20_000 + b"]" * 20_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
]

ALLOWED_STATUSES = {200, 201, 204} | CONTRACT_STATUSES


class _Slot:
    """Where a hostile value goes in a request template."""

    def __repr__(self) -> str:
        return "<value>"


V = _Slot()
NO_BODY = _Slot()


def _fill(template: Any, value: Any) -> Any:
    if template is V:
        return value
    if isinstance(template, dict):
        return {k: _fill(t, value) for k, t in template.items()}
    if isinstance(template, list):
        return [_fill(t, value) for t in template]
    return template


def _quoted(value: Any) -> str:
    return quote(str(value), safe="", errors="surrogatepass")


@pytest.fixture
def fuzz_client(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    """An app that answers unexpected failures as 500s (instead of raising) and does not
    rate-limit, so every hostile request is judged on its own."""
    app = create_app(
        settings.model_copy(update={"send_rate_per_minute": 1_000_000}), db=db, clock=clock
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_hostile_input_never_causes_a_500(fuzz_client: TestClient) -> None:
    """Dozens of hostile values in every parameter of the user and integration endpoints: no
    response is a 500, each status is one the contract names, and every error has the shape."""
    world = build_world(Api(fuzz_client))
    emp = world["emp_team"]
    conv = application_conversation(world)
    msg = emp.send(conv, "Hello").json()["id"]
    messages = f"/api/v1/conversations/{conv}/messages"
    org = {"name": "Org", "kind": "employer"}
    staff = {"name": "S", "email": "s@example.com", "organization": "acme", "role": "member"}
    cand = {"name": "C", "email": "c@example.org"}
    job = {"title": "T", "employer": "acme"}
    app2 = {"job": "job1", "candidate": "cand2", "stage": "interview"}
    # (caller, method, path with {v} where the value goes, body template with V or NO_BODY)
    templates: list[tuple[str, str, str, Any]] = [
        # user endpoints
        ("emp_team", "POST", "/api/v1/conversations", V),
        ("emp_team", "POST", "/api/v1/conversations", {"kind": "application", "application": V}),
        ("emp_team", "POST", "/api/v1/conversations",
         {"kind": "job_partner", "job": V, "partner": V}),
        ("agency_user", "POST", "/api/v1/conversations",
         {"kind": "agency_private", "application": "app1", "with_user": V}),
        ("emp_team", "GET", "/api/v1/conversations?filter={v}&kind={v}&limit={v}", NO_BODY),
        ("emp_team", "GET",
         "/api/v1/conversations?job={v}&candidate={v}&application={v}&cursor={v}", NO_BODY),
        ("emp_team", "GET", "/api/v1/conversations/{v}", NO_BODY),
        ("emp_team", "GET", messages + "?before={v}&limit={v}", NO_BODY),
        ("emp_team", "POST", messages, V),
        ("emp_team", "POST", messages, {"body": V, "channel": "email", "subject": V}),
        ("emp_team", "POST", messages, {"body": V, "channel": "sms"}),
        ("emp_team", "POST", messages, {"body": "Hi", "channel": V, "idempotency_key": V}),
        ("emp_team", "POST", f"/api/v1/conversations/{conv}/read", {"up_to": V}),
        ("emp_team", "POST", f"/api/v1/conversations/{conv}/read", V),
        ("emp_team", "DELETE", "/api/v1/messages/{v}", NO_BODY),
        ("emp_team", "DELETE", f"/api/v1/messages/{msg}?for={{v}}", NO_BODY),
        ("emp_team", "PATCH", "/api/v1/me", {"timezone": V}),
        ("emp_team", "PATCH", "/api/v1/me", V),
        ("emp_team", "GET", "/api/v1/candidates?q={v}&cursor={v}", NO_BODY),
        ("bearer", "GET", "/api/v1/me", NO_BODY),
        # integration endpoints
        ("key", "PUT", "/api/v1/organizations/{v}", org),
        ("key", "PUT", "/api/v1/organizations/o2", org | {"name": V}),
        ("key", "PUT", "/api/v1/users/s1", staff | {"name": V, "organization": V}),
        ("key", "PUT", "/api/v1/users/s2", staff | {"email": V, "phone": V, "timezone": V}),
        ("key", "PUT", "/api/v1/candidates/c1", cand | {"source_partner": V, "sms_consent": V}),
        ("key", "PUT", "/api/v1/candidates/c2", cand | {"phone": V, "timezone": V}),
        ("key", "PUT", "/api/v1/jobs/j1", job | {"title": V, "employer": V}),
        ("key", "PUT", "/api/v1/jobs/j2", job | {"team": [V], "partners": [V]}),
        ("key", "PUT", "/api/v1/applications/app2",
         app2 | {"stage_owner": V, "agency_user": V, "applied_at": V}),
        ("key", "PUT", "/api/v1/applications/a9", {"job": V, "candidate": V, "stage": "applied"}),
        ("key", "POST", "/api/v1/users/{v}/tokens", NO_BODY),
    ]  # fmt: skip
    raw_targets: list[tuple[str, str, str]] = [
        ("emp_team", "POST", messages),
        ("emp_team", "PATCH", "/api/v1/me"),
        ("key", "PUT", "/api/v1/applications/app2"),
    ]

    def headers(caller: str, value: Any) -> dict[str, str]:
        if caller == "key":
            return {"Authorization": f"Bearer {API_KEY}"}
        if caller == "bearer":  # the hostile value is the token itself
            return {"Authorization": f"Bearer {_quoted(value)}"}
        return dict(world[caller].headers)

    failures: list[str] = []

    def judge(label: str, r: httpx.Response) -> None:
        if r.status_code not in ALLOWED_STATUSES:
            failures.append(f"{label}: status {r.status_code}: {r.text[:160]}")
        elif r.status_code >= 400 and (problems := error_problems(r)):
            failures.append(f"{label}: {r.status_code} {problems}")

    for caller, method, path, body in templates:
        for value in HOSTILE:
            content = None
            hdrs = headers(caller, value)
            if body is not NO_BODY:
                content = json.dumps(_fill(body, value)).encode()
                hdrs["Content-Type"] = "application/json"
            url = path.replace("{v}", _quoted(value))
            r = fuzz_client.request(method, url, content=content, headers=hdrs)
            judge(f"{method} {path} {str(body)[:50]} with {repr(value)[:30]}", r)
    for caller, method, path in raw_targets:
        for raw in RAW_BODIES:
            hdrs = headers(caller, None) | {"Content-Type": "application/json"}
            r = fuzz_client.request(method, path, content=raw, headers=hdrs)
            judge(f"{method} {path} with raw {raw[:30]!r}", r)

    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:40])
    # The world still works afterwards.
    assert emp.send(conv, "Still here").status_code == 201


def test_hostile_message_bodies_are_stored_exactly(world: World) -> None:
    """Unicode, markup and quoting in a message body are stored and shown as sent."""
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    bodies = ["💥 Zälgo \u202eevil\u202c", "<script>alert(1)</script>", "' OR '1'='1 --", "x\ty"]
    for body in bodies:
        r = emp.send(conv_id, body)
        assert r.status_code == 201, r.text
        assert r.json()["body"] == body
    history = world["cand"].messages(conv_id).json()["items"]
    assert [m["body"] for m in history] == bodies


# --- rate limit ----------------------------------------------------------------------------------


@pytest.fixture
def slow_client(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    """An app that lets one user send at most 3 messages a minute."""
    app = create_app(settings.model_copy(update={"send_rate_per_minute": 3}), db=db, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


def test_fourth_send_in_a_row_is_429(slow_client: TestClient, db: Database) -> None:
    """Past the configured send rate the next send is refused with 429 and not stored."""
    world = build_world(Api(slow_client))
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    for i in range(3):
        r = emp.send(conv_id, f"Message {i}")
        assert r.status_code == 201, r.text
    r = emp.send(conv_id, "One too many")
    assert_error(r, 429, "rate_limited")
    # When the first of the three leaves the minute's window, in whole seconds.
    assert 55 <= int(r.headers["Retry-After"]) <= 60
    with db.read() as s:
        bodies = list(s.scalars(select(Message.body).order_by(Message.id)))
    assert bodies == ["Message 0", "Message 1", "Message 2"]
    # The limit is per user: someone else in the same conversation may still send.
    r = world["cand"].send(conv_id, "My turn")
    assert r.status_code == 201, r.text


def test_a_send_refused_after_it_was_counted_does_not_use_up_the_rate(
    slow_client: TestClient, db: Database
) -> None:
    """The rate is counted before the send's own checks (its files, its text): a send refused by
    them stored nothing, and its count is taken back with it (on SQLite, from inside the group
    commit's shared transaction, which goes on for the others)."""
    world = build_world(Api(slow_client))
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    for _ in range(4):
        r = emp.send(conv_id, "With a file", attachments=[987654321])
        assert r.status_code in (404, 422), r.text
    for i in range(3):
        r = emp.send(conv_id, f"Message {i}")
        assert r.status_code == 201, r.text
    assert_error(emp.send(conv_id, "One too many"), 429, "rate_limited")


def test_a_retried_send_is_replayed_even_when_rate_limited(
    slow_client: TestClient, db: Database
) -> None:
    """A retry with the idempotency key of a stored send is not a new send: it answers the stored
    message (Idempotent-Replayed) rather than 429, so the client learns its message went out."""
    world = build_world(Api(slow_client))
    conv_id = application_conversation(world)
    emp = world["emp_team"]
    first = emp.send(conv_id, "Offer", idempotency_key="offer-1")
    assert first.status_code == 201, first.text
    for i in range(2):
        assert emp.send(conv_id, f"More {i}").status_code == 201
    assert_error(emp.send(conv_id, "New one"), 429, "rate_limited")
    retry = emp.send(conv_id, "Offer", idempotency_key="offer-1")
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json()["id"] == first.json()["id"]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 3

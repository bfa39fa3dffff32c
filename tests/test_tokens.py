"""User tokens: issued with a name and a lifetime, listed without secrets, revoked; revoking
one ends it at once, its cached copy and its open sockets included. (Two server processes:
tests/test_revocation_e2e.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from jobchat.auth.actions import do_create_credential
from jobchat.auth.models import CredentialKind
from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.realtime import codes
from tests.support import (
    API_KEY,
    Api,
    As,
    World,
    assert_error,
    besides_heartbeats,
    body,
    user_id,
)

TOKENS = "/api/v1/users/emp_team/tokens"


def _time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def issue(api: Api, path: str = TOKENS, json: Any = None) -> dict[str, Any]:
    return body(api.integration.post(path, json), 201)


def revoke(api: Api, token_id: int) -> None:
    response = api.integration.delete(f"/api/v1/tokens/{token_id}")
    assert response.status_code == 204, response.text
    assert response.content == b""


def test_a_token_lasts_token_days_by_default_and_expires_in_days_when_asked(
    world: World, api: Api, client: TestClient, clock: FrozenClock
) -> None:
    plain = issue(api)  # no body at all, as before
    assert set(plain) == {"id", "token", "name", "expires_at"}
    assert plain["name"] is None
    assert _time(plain["expires_at"]) == clock.now() + timedelta(days=90)
    # An explicit JSON null, and an empty object, are the same as no body.
    assert issue(api, json={})["name"] is None
    named = issue(
        api, "/api/v1/candidates/cand/tokens", {"name": "ATS portal", "expires_in_days": 2}
    )
    assert named["name"] == "ATS portal"
    assert _time(named["expires_at"]) == clock.now() + timedelta(days=2)

    who = As(client, named["token"])
    assert body(who.get("/api/v1/me"), 200)["id"] == "cand"
    clock.advance(seconds=2 * 86400 - 1)
    assert who.get("/api/v1/me").status_code == 200
    clock.advance(seconds=1)
    assert_error(who.get("/api/v1/me"), 401)
    # The default-lifetime token still works, until its 90 days are up.
    assert As(client, plain["token"]).get("/api/v1/me").status_code == 200
    clock.advance(days=88)
    assert_error(As(client, plain["token"]).get("/api/v1/me"), 401)


@pytest.mark.parametrize(
    ("json", "fields"),
    [
        ({"expires_in_days": 0}, {"expires_in_days"}),
        ({"expires_in_days": 3651}, {"expires_in_days"}),
        ({"expires_in_days": "soon"}, {"expires_in_days"}),
        ({"name": "x" * 201}, {"name"}),
        ({"name": "a\x00b"}, {"name"}),
        ({"name": "CI\nBcc: x"}, {"name"}),
        ({"nmae": "typo"}, {"nmae"}),
    ],
)
def test_bad_token_requests_get_422_naming_the_field(
    world: World, api: Api, json: dict[str, Any], fields: set[str]
) -> None:
    assert_error(api.integration.post(TOKENS, json), 422, fields=fields)


def test_the_token_list_shows_every_token_of_the_person_and_never_a_secret(
    world: World, api: Api, client: TestClient, clock: FrozenClock
) -> None:
    first = issue(api, json={"name": "laptop"})
    clock.advance(minutes=1)
    second = issue(api, json={"name": "phone", "expires_in_days": 7})
    revoke(api, first["id"])

    listed = api.integration.get(TOKENS)
    items = body(listed, 200)["items"]
    assert first["token"] not in listed.text and second["token"] not in listed.text
    mine = {item["id"]: item for item in items}
    assert set(mine[first["id"]]) == {"id", "name", "created_at", "expires_at", "revoked_at"}
    assert mine[first["id"]]["name"] == "laptop"
    assert mine[first["id"]]["revoked_at"] is not None
    assert mine[second["id"]]["revoked_at"] is None
    assert _time(mine[second["id"]]["expires_at"]) == clock.now() + timedelta(days=7)
    # World's own token for emp_team is listed too; nobody else's is.
    assert len(items) == 3
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)

    assert_error(api.integration.get("/api/v1/users/nobody/tokens"), 404)
    # Staff and candidates have separate id spaces: emp_team is no candidate.
    assert_error(api.integration.get("/api/v1/candidates/emp_team/tokens"), 404)
    # Only the integration key lists or revokes tokens.
    assert_error(world["emp_team"].get(TOKENS), 403)
    assert_error(world["emp_team"].delete(f"/api/v1/tokens/{second['id']}"), 403)


def test_a_revoked_token_gets_401_at_once_even_just_after_it_was_used(
    world: World, api: Api, client: TestClient
) -> None:
    token = issue(api)
    who = As(client, token["token"])
    other = world["emp_team"]  # the same person's other token
    assert who.get("/api/v1/me").status_code == 200  # remembered by this process now
    assert who.get("/api/v1/unread").status_code == 200

    revoked = api.integration.delete(f"/api/v1/tokens/{token['id']}")
    assert revoked.status_code == 204 and revoked.content == b""
    assert_error(who.get("/api/v1/me"), 401)
    assert_error(who.post(f"/api/v1/conversations/{1}/read"), 401)
    assert other.get("/api/v1/me").status_code == 200

    # Revoking again changes nothing; an unknown id, or one that is no token, is 404.
    before = {i["id"]: i for i in body(api.integration.get(TOKENS), 200)["items"]}
    assert api.integration.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    after = {i["id"]: i for i in body(api.integration.get(TOKENS), 200)["items"]}
    assert after == before
    assert_error(api.integration.delete("/api/v1/tokens/999999"), 404)
    assert_error(api.integration.delete("/api/v1/tokens/0"), 422, fields={"token_id"})
    link = body(api.integration.post("/api/v1/users/emp_team/login-links"), 201)
    assert link["url"]
    # A session or sign-in link id is no token id: credentials are numbered together, so
    # the newest credential is that link.
    newest = max(after) + 1
    assert_error(api.integration.delete(f"/api/v1/tokens/{newest}"), 404)


def test_revoking_a_token_closes_the_sockets_opened_with_it_and_only_those(
    world: World, api: Api, client: TestClient
) -> None:
    token = issue(api)
    other = world["emp_team"].headers["Authorization"].removeprefix("Bearer ")
    with (
        client.websocket_connect(f"/api/v1/events?token={token['token']}") as revoked_ws,
        client.websocket_connect(f"/api/v1/events?token={other}") as kept_ws,
    ):
        assert _until_ready(revoked_ws) and _until_ready(kept_ws)
        revoke(api, token["id"])
        with pytest.raises(WebSocketDisconnect) as closed:
            _read_until_closed(revoked_ws)
        assert closed.value.code == codes.ACCESS_ENDED == 4401
        kept_ws.send_json({"type": "ping"})
        assert besides_heartbeats(kept_ws)["type"] == "pong"
    # And it cannot come back.
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(f"/api/v1/events?token={token['token']}") as ws,
    ):
        ws.receive_json()


def _read_until_closed(ws: Any) -> None:
    while True:
        ws.receive_json()


def _until_ready(ws: Any) -> bool:
    while ws.receive_json()["type"] != "ready":
        pass
    return True


def test_tokens_issued_before_tokens_expired_keep_working(
    world: World, client: TestClient, db: Database, clock: FrozenClock
) -> None:
    """A token row without an expiry (made before 0006) never expires: the ATS revokes it."""
    with db.write() as session:
        user = session.get_one(User, user_id(db, "emp_admin"))
        secret = do_create_credential(
            session, user=user, kind=CredentialKind.token, now=clock.now(), lifetime=None
        )
    clock.advance(days=3650)
    assert As(client, secret).get("/api/v1/me").status_code == 200


def test_the_configured_key_and_a_user_token_are_told_apart_when_revoking(
    world: World, client: TestClient
) -> None:
    """The integration key is needed to revoke; a bad key is 401."""
    assert_error(As(client, API_KEY + "x").delete("/api/v1/tokens/1"), 401)

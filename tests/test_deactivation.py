"""Deactivating staff and candidates (``DELETE /api/v1/users|candidates/{id}``) and bringing
them back with a ``PUT``: access ends at once, memberships end and come back by the rules,
nothing of the history is lost."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from jobchat.realtime import codes
from tests.support import Api, As, World, assert_error, body, members, sent, start
from tests.web_support import Browser

STAFF = {"name": "Tess Team", "email": "emp_team@example.com", "organization": "acme"}


def deactivate(api: Api, path: str) -> None:
    response = api.integration.delete(path)
    assert response.status_code == 204, response.text
    assert response.content == b""


def conversation(user: As, conv_id: int) -> dict[str, Any]:
    return body(user.get(f"/api/v1/conversations/{conv_id}"), 200)


def history(user: As, conv_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body(user.messages(conv_id), 200)["items"]
    return items


def test_a_deactivated_person_can_no_longer_sign_in_or_call_the_api(
    world: World, api: Api, client: TestClient
) -> None:
    tess = world["emp_team"]
    assert tess.get("/api/v1/me").status_code == 200  # remembered by this process
    browser = Browser.signed_in(client, api, "emp_team")
    assert body(browser.api("GET", "/api/v1/me"), 200)["id"] == "emp_team"
    unused_link = body(api.integration.post("/api/v1/users/emp_team/login-links"), 201)["url"]

    deactivate(api, "/api/v1/users/emp_team")

    assert_error(tess.get("/api/v1/me"), 401)
    assert_error(browser.api("GET", "/api/v1/me"), 401)
    assert browser.client.get("/inbox", follow_redirects=False).status_code != 200
    link_page = TestClient(client.app).get(unused_link, follow_redirects=False)
    assert link_page.status_code == 404
    assert "jobchat_session" not in link_page.cookies
    # Nothing new is issued to them until they are reactivated.
    assert_error(api.integration.post("/api/v1/users/emp_team/tokens"), 409, "user_deactivated")
    assert_error(
        api.integration.post("/api/v1/users/emp_team/login-links"), 409, "user_deactivated"
    )
    # Their tokens are listed, revoked.
    listed = body(api.integration.get("/api/v1/users/emp_team/tokens"), 200)["items"]
    assert listed and all(t["revoked_at"] is not None for t in listed)
    # Again: still 204; unknown people 404, in each id space.
    deactivate(api, "/api/v1/users/emp_team")
    assert_error(api.integration.delete("/api/v1/users/nobody"), 404)
    assert_error(api.integration.delete("/api/v1/candidates/emp_team"), 404)
    assert_error(tess.delete("/api/v1/users/emp_admin"), 401)
    assert_error(world["emp_admin"].delete("/api/v1/users/emp_team"), 403)
    # Everyone else carries on.
    assert world["emp_admin"].get("/api/v1/me").status_code == 200


def test_their_open_sockets_are_closed(world: World, api: Api, client: TestClient) -> None:
    token = world["cand"].headers["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/v1/events?token={token}") as ws:
        while ws.receive_json()["type"] != "ready":
            pass
        deactivate(api, "/api/v1/candidates/cand")
        with pytest.raises(WebSocketDisconnect) as closed:
            _read_until_closed(ws)
        assert closed.value.code == codes.ACCESS_ENDED


def _read_until_closed(ws: Any) -> None:
    while True:
        ws.receive_json()


def test_they_leave_every_conversation_and_their_history_stays_under_their_name(
    world: World, api: Api, client: TestClient
) -> None:
    admin, tess = world["emp_admin"], world["emp_team"]
    chats = {
        "application": start(tess, "application", application="app1"),
        "case": start(tess, "case", application="app1"),
        "job_partner": start(tess, "job_partner", job="job1", partner="tbb"),
        "agency_private": start(tess, "agency_private", application="app1"),
    }
    said = {kind: sent(tess.send(conv, f"Tess in {kind}"))["id"] for kind, conv in chats.items()}
    sent(world["cand"].send(chats["application"], "A reply for Tess"))
    admin_token = admin.headers["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/v1/events?token={admin_token}") as ws:
        while ws.receive_json()["type"] != "ready":
            pass
        deactivate(api, "/api/v1/users/emp_team")
        removed: set[int] = set()
        while len(removed) < 3:  # admin is in all but the private thread
            frame = ws.receive_json()
            if frame["type"] == "member.removed":
                assert frame["data"]["member"]["id"] == "emp_team"
                removed.add(frame["conversation"])
        assert removed == {chats["application"], chats["case"], chats["job_partner"]}

    for kind in ("application", "case", "job_partner"):
        conv = conversation(admin, chats[kind])
        assert "emp_team" not in members(conv), kind
        (message,) = [m for m in history(admin, chats[kind]) if m["id"] == said[kind]]
        assert message["author"]["id"] == "emp_team"
        assert message["author"]["name"] == "Tess Team"
        assert message["body"] == f"Tess in {kind}"
    # The agency user keeps reading the private thread, and may still write into it.
    agent = world["agency_user"]
    assert members(conversation(agent, chats["agency_private"])) == {"agency_user"}
    assert [m["body"] for m in history(agent, chats["agency_private"])] == [
        "Tess in agency_private"
    ]
    sent(agent.send(chats["agency_private"], "Noted"))
    # Posting goes on without them; the candidate's replies are still read by the rest.
    sent(admin.send(chats["application"], "I'll take over from Tess"))
    assert "emp_team" not in members(conversation(world["cand"], chats["application"]))


def test_a_put_reactivates_them_and_their_memberships_come_back(
    world: World, api: Api, client: TestClient
) -> None:
    tess = world["emp_team"]
    chat = start(tess, "application", application="app1")
    private = start(tess, "agency_private", application="app1")
    sent(tess.send(chat, "Before"))
    deactivate(api, "/api/v1/users/emp_team")
    sent(world["cand"].send(chat, "While Tess was away"))

    again = api.integration.put("/api/v1/users/emp_team", STAFF | {"role": "member"})
    assert again.status_code == 200, again.text
    assert_error(tess.get("/api/v1/me"), 401)  # old tokens stay revoked
    back = api.as_staff("emp_team")
    assert body(back.get("/api/v1/me"), 200)["id"] == "emp_team"
    assert "emp_team" in members(conversation(world["emp_admin"], chat))
    assert members(conversation(back, private)) == {"emp_team", "agency_user"}
    assert [m["body"] for m in history(back, chat)] == ["Before", "While Tess was away"]
    # As a newcomer: they see the history and start with nothing unread.
    assert body(back.get("/api/v1/unread"), 200) == {"conversations": 0, "messages": 0}
    sent(back.send(chat, "I'm back"))


def test_a_deactivated_candidate_gets_nothing_more_and_comes_back_by_the_rules(
    world: World, api: Api, client: TestClient
) -> None:
    tess, cand = world["emp_team"], world["cand"]
    chat = start(tess, "application", application="app1")
    relocation = start(world["emp_admin"], "job_relocation", job="job1")
    partner_chat = start(world["sp_in"], "candidate_partner", candidate="cand")
    queued = sent(tess.send(chat, "Our offer", channel="email", subject="Offer"))
    assert [d["status"] for d in queued["deliveries"]] == ["queued"]

    deactivate(api, "/api/v1/candidates/cand")

    assert_error(cand.get("/api/v1/me"), 401)
    for conv_id, who in (
        (chat, tess),
        (relocation, world["emp_admin"]),
        (partner_chat, world["sp_in"]),
    ):
        assert "cand" not in members(conversation(who, conv_id))
    # The email that had not gone out never will; no new one is sent, nor a text.
    (stored,) = [m for m in history(tess, chat) if m["id"] == queued["id"]]
    assert [d["status"] for d in stored["deliveries"]] == ["cancelled"]
    assert_error(
        tess.send(chat, "Hello?", channel="email", subject="Hi"), 422, "candidate_deactivated"
    )
    assert_error(tess.send(chat, "Hello?", channel="sms"), 422, "candidate_deactivated")
    sent(tess.send(chat, "A note for the team"))

    cand_body = {"name": "Carla Candidate", "email": "cand@example.org"}
    assert api.integration.put("/api/v1/candidates/cand", cand_body).status_code == 200
    back = api.as_candidate("cand")
    for conv_id in (chat, relocation, partner_chat):
        assert "cand" in members(conversation(back, conv_id))
    assert "A note for the team" in [m["body"] for m in history(back, chat)]


def test_deactivating_a_stage_owner_or_agency_user_breaks_nothing_else(
    world: World, api: Api, client: TestClient
) -> None:
    agent = world["agency_user"]
    shared = start(agent, "agency", application="app1")
    deactivate(api, "/api/v1/users/emp_team")  # app1's stage owner
    # The agency user may no longer open a private thread with them...
    assert_error(
        agent.start("agency_private", application="app1", with_user="emp_team"),
        403,
        "cannot_start",
    )
    # ...and the ATS may still send the application, naming them.
    application = {
        "job": "job1",
        "candidate": "cand",
        "stage": "hired",
        "stage_owner": "emp_team",
        "agency_user": "agency_user",
    }
    assert api.integration.put("/api/v1/applications/app1", application).status_code == 200
    deactivate(api, "/api/v1/users/agency_user")
    admin = world["emp_admin"]
    assert members(conversation(admin, shared)) == {"emp_admin"}
    sent(admin.send(shared, "Still here"))
    private = start(admin, "agency_private", application="app1")
    assert members(conversation(admin, private)) == {"emp_admin"}
    assert body(admin.get("/api/v1/conversations", limit=50), 200)["items"]

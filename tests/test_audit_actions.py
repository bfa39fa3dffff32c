"""Each audited action writes exactly one entry, in its own transaction: who did it (the signed-in
person, the integration key, or the system), to what, when and from which address; and never
a name, an address, a phone number or a message's words.

Read back through ``GET /api/v1/audit``. The test client connects as ``testclient``; the address
a proxy forwards is tested against a real ``jobchat serve`` (slow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from tests.support import API_KEY, TEST_CLIENT_ADDRESS, As, World, assert_error, body, start
from tests.test_cli import cli_database_url, jobchat
from tests.test_deploy_proxy import CLIENT, served

__all__ = ["cli_database_url"]  # the fixture: a fresh database for the command line's test

TEST_CLIENT = TEST_CLIENT_ADDRESS  # the test client's peer
# What the world's people are called and can be reached at, and what they write here: none of
# it may appear in an entry.
PERSONAL = ["Carla", "Candidate", "Tess", "Team", "example.org", "example.com", "4155550123"]


def entries(integration: As, **params: Any) -> list[dict[str, Any]]:
    """The entries, less the SMS consent given as the world's candidates were upserted (unless
    an action is asked for): these tests are about the other actions."""
    items: list[dict[str, Any]] = body(integration.get("/api/v1/audit", **params), 200)["items"]
    if "action" in params:
        return items
    return [e for e in items if e["action"] != "sms.opted_in" or e["actor"] != INTEGRATION]


def only_entry(integration: As, **params: Any) -> dict[str, Any]:
    found = entries(integration, **params)
    assert len(found) == 1, found
    return found[0]


def assert_impersonal(items: list[dict[str, Any]], *words: str) -> None:
    text = json.dumps(items)
    for word in [*PERSONAL, *words]:
        assert word not in text, (word, items)


def staff(ext_id: str) -> dict[str, Any]:
    return {"type": "staff", "id": ext_id, "name": None}


INTEGRATION = {"type": "integration", "id": None, "name": "JOBCHAT_API_KEY"}


def test_the_world_being_set_up_is_audited_only_for_sms_consent(world: World) -> None:
    """Upserts and tokens issued are not in the log; the SMS consent the ATS gives with a
    candidate is, naming the key that gave it."""
    assert entries(world.api.integration) == []
    consents = entries(world.api.integration, action="sms.opted_in")
    assert consents and {(e["actor"]["name"], e["subject"]["type"]) for e in consents} == {
        ("JOBCHAT_API_KEY", "candidate")
    }
    assert_impersonal(consents)


def test_a_deletion_for_everyone_is_one_entry_naming_the_author(
    world: World, clock: FrozenClock
) -> None:
    emp, integration = world["emp_team"], world.api.integration
    conv_id = start(emp, "application", application="app1")
    message = body(emp.send(conv_id, "Secret salary figure", channel="email", subject="Pay"), 201)
    hidden = body(emp.send(conv_id, "Just for me"), 201)
    # Hiding one's own view of a message is not a deletion for everyone: not audited.
    assert emp.delete(f"/api/v1/messages/{hidden['id']}", **{"for": "me"}).status_code == 204
    assert entries(integration) == []

    clock.advance(minutes=3)
    r = emp.delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    assert r.status_code == 204, r.text
    entry = only_entry(integration)
    assert entry == {
        "id": entry["id"],
        "action": "message.deleted",
        "actor": staff("emp_team"),
        "subject": {"type": "message", "id": message["id"], "name": None},
        "at": "2026-01-05T09:03:00Z",
        "ip": TEST_CLIENT,
        "details": {"conversation": conv_id, "channel": "email"},
    }
    # Deleting it again changes nothing, and writes nothing.
    assert emp.delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"}).status_code == 204
    assert len(entries(integration)) == 1
    assert_impersonal(entries(integration), "Secret", "salary", "Pay")


def test_ending_and_reopening_are_one_entry_each(world: World, clock: FrozenClock) -> None:
    emp, integration = world["emp_team"], world.api.integration
    conv_id = start(emp, "application", application="app1")
    body(world["cand"].send(conv_id, "Thanks, see you Monday"), 201)

    clock.advance(minutes=1)
    body(emp.post(f"/api/v1/conversations/{conv_id}/end"), 200)
    # Ending an ended conversation changes nothing.
    body(emp.post(f"/api/v1/conversations/{conv_id}/end"), 200)
    ended = only_entry(integration)
    assert ended["action"] == "conversation.ended"
    assert ended["actor"] == staff("emp_team")
    assert ended["subject"] == {"type": "conversation", "id": conv_id, "name": None}
    assert (ended["at"], ended["ip"], ended["details"]) == ("2026-01-05T09:01:00Z", TEST_CLIENT, {})

    # The candidate cannot post into it, so cannot reopen it; staff writing again does.
    assert_error(world["cand"].send(conv_id, "Hello?"), 409, "conversation_ended")
    clock.advance(minutes=1)
    reply = body(world["emp_admin"].send(conv_id, "One more thing"), 201)
    body(world["emp_admin"].send(conv_id, "And another"), 201)  # already open: no entry
    reopened = only_entry(integration, action="conversation.reopened")
    assert reopened["actor"] == staff("emp_admin")
    assert reopened["subject"] == {"type": "conversation", "id": conv_id, "name": None}
    assert reopened["details"] == {"message": reply["id"]}
    assert (reopened["at"], reopened["ip"]) == ("2026-01-05T09:02:00Z", TEST_CLIENT)
    assert [e["action"] for e in entries(integration)] == [
        "conversation.reopened",
        "conversation.ended",
    ]
    assert_impersonal(entries(integration), "Monday", "thing")


def test_deactivations_name_the_integration_and_whom_by_external_id(world: World) -> None:
    integration = world.api.integration
    assert integration.delete("/api/v1/candidates/cand").status_code == 204
    assert integration.delete("/api/v1/users/emp_team").status_code == 204
    # Again: already deactivated, nothing changes.
    assert integration.delete("/api/v1/candidates/cand").status_code == 204
    staff_entry, cand_entry = entries(integration)
    assert cand_entry["action"] == "candidate.deactivated"
    assert cand_entry["subject"] == {"type": "candidate", "id": "cand", "name": None}
    assert staff_entry["action"] == "user.deactivated"
    assert staff_entry["subject"] == staff("emp_team")
    for entry in (cand_entry, staff_entry):
        assert entry["actor"] == INTEGRATION
        assert (entry["ip"], entry["details"]) == (TEST_CLIENT, {})
    # A person brought back and deactivated again: a second entry.
    world.api.candidate("cand", "Carla Candidate")
    assert integration.delete("/api/v1/candidates/cand").status_code == 204
    assert len(entries(integration, action="candidate.deactivated")) == 2
    assert_impersonal(entries(integration))


def test_a_token_revocation_names_the_token_and_its_owner(world: World) -> None:
    integration = world.api.integration
    issued = body(integration.post("/api/v1/users/emp_other/tokens", {"name": "laptop"}), 201)
    assert integration.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204
    assert integration.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204  # again
    assert_error(integration.delete("/api/v1/tokens/999999"), 404)
    entry = only_entry(integration)
    assert entry["action"] == "token.revoked"
    assert entry["actor"] == INTEGRATION
    assert entry["subject"] == {"type": "token", "id": issued["id"], "name": None}
    assert entry["details"] == {"owner": {"type": "staff", "id": "emp_other"}}
    assert entry["ip"] == TEST_CLIENT
    assert_impersonal([entry], "Otto", issued["token"])


def test_an_integration_key_names_itself_and_the_command_line_is_the_system(
    cli_database_url: str, tmp_path: Path
) -> None:
    """A key made with ``jobchat api-key create`` is the actor of what is done with it, by its
    id and name; revoking it with ``jobchat api-key revoke`` is the system's doing, with no
    address."""
    made = jobchat(cli_database_url, tmp_path, "api-key", "create", "--name", "greenhouse")
    assert made.returncode == 0, made.stderr
    settings = Settings(database_url=cli_database_url, api_key=API_KEY, _env_file=None)
    db = Database(settings.sqlalchemy_url)
    try:
        with TestClient(create_app(settings, db=db)) as client:
            key = As(client, made.stdout.strip())
            body(key.put("/api/v1/candidates/c1", {"name": "Ann Example", "email": "a@x.org"}), 201)
            assert key.delete("/api/v1/candidates/c1").status_code == 204

            revoked = jobchat(cli_database_url, tmp_path, "api-key", "revoke", "1")
            assert revoked.returncode == 0, revoked.stderr
            assert_error(key.get("/api/v1/audit"), 401)  # the revoked key itself

            revocation, deactivation = entries(As(client, API_KEY))
    finally:
        db.dispose()
    assert deactivation["action"] == "candidate.deactivated"
    assert deactivation["actor"] == {"type": "integration", "id": 1, "name": "greenhouse"}
    assert deactivation["subject"] == {"type": "candidate", "id": "c1", "name": None}
    assert revocation["action"] == "api_key.revoked"
    assert revocation["actor"] == {"type": "system", "id": None, "name": None}
    assert revocation["subject"] == {"type": "api_key", "id": 1, "name": "greenhouse"}
    assert (revocation["ip"], revocation["details"]) == (None, {})


@pytest.mark.slow  # starts two servers
def test_the_address_is_the_one_a_trusted_proxy_forwards(tmp_path: Path) -> None:
    """Behind a proxy named in JOBCHAT_TRUSTED_PROXIES the entry has the client's address from
    X-Forwarded-For; from anyone else the header is ignored and the peer's address is kept."""
    seen: dict[str, str] = {}
    for trusted in ("127.0.0.1", ""):
        folder = tmp_path / (trusted or "none")
        folder.mkdir()
        with served(folder, trusted_proxies=trusted) as server:
            headers = {"Authorization": f"Bearer {API_KEY}", "X-Forwarded-For": CLIENT}
            put = server.http.put(
                "/api/v1/candidates/c1", json={"name": "Ann", "email": "a@x.org"}, headers=headers
            )
            assert put.status_code == 201, put.text
            assert server.http.delete("/api/v1/candidates/c1", headers=headers).status_code == 204
            items = server.http.get("/api/v1/audit", headers=headers).json()["items"]
            assert [e["action"] for e in items] == ["candidate.deactivated"], items
            seen[trusted] = items[0]["ip"]
    assert seen == {"127.0.0.1": CLIENT, "": "127.0.0.1"}

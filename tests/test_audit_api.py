"""``GET /api/v1/audit``: newest first, filtered by action and time, paged by an opaque cursor;
the integration key's alone; every bad parameter a 422 naming it."""

from __future__ import annotations

import base64
import json
from typing import Any

from jobchat.clock import FrozenClock
from tests.support import Api, As, World, assert_error, body


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def page(integration: As, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = body(integration.get("/api/v1/audit", **params), 200)
    return answer


def deactivate(api: Api, ext_id: str) -> None:
    """One ``candidate.deactivated`` entry (the candidate is brought back first if need be)."""
    api.candidate(ext_id, "Someone")
    assert api.integration.delete(f"/api/v1/candidates/{ext_id}").status_code == 204


def subjects(items: list[dict[str, Any]]) -> list[str]:
    return [e["subject"]["id"] for e in items]


def test_newest_first_by_time_then_by_id(api: Api, clock: FrozenClock) -> None:
    """Entries written at the same moment come newest first too (by id); an entry stamped with
    an earlier time than one before it (a clock set back) sorts by its time."""
    deactivate(api, "c1")
    deactivate(api, "c2")  # the same moment as c1
    clock.advance(minutes=5)
    deactivate(api, "c3")
    clock.advance(minutes=-10)
    deactivate(api, "c4")  # written last, but at the earliest time
    items = page(api.integration)["items"]
    assert subjects(items) == ["c3", "c2", "c1", "c4"]
    assert [e["at"] for e in items] == [
        "2026-01-05T09:05:00Z",
        "2026-01-05T09:00:00Z",
        "2026-01-05T09:00:00Z",
        "2026-01-05T08:55:00Z",
    ]
    assert page(api.integration)["next_cursor"] is None


def test_filters_by_action_and_since(world: World, clock: FrozenClock) -> None:
    api, emp = world.api, world["emp_team"]
    conv_id = body(emp.start("application", application="app1"), 201)["id"]
    body(emp.post(f"/api/v1/conversations/{conv_id}/end"), 200)
    clock.advance(hours=1)
    deactivate(api, "cand2")
    clock.advance(hours=1)
    body(emp.send(conv_id, "Back again"), 201)

    def actions(**params: Any) -> list[str]:
        return [e["action"] for e in page(api.integration, **params)["items"]]

    assert actions() == ["conversation.reopened", "candidate.deactivated", "conversation.ended"]
    assert actions(action="conversation.ended") == ["conversation.ended"]
    assert actions(action="candidate.erased") == []
    # since: at or after, in any offset.
    assert actions(since="2026-01-05T10:00:00Z") == [
        "conversation.reopened",
        "candidate.deactivated",
    ]
    assert actions(since="2026-01-05T12:00:00+01:00") == actions(since="2026-01-05T11:00:00Z")
    assert actions(since="2026-01-05T11:00:00.000001Z") == []
    assert actions(action="conversation.ended", since="2026-01-05T09:00:01Z") == []


def test_paging_walks_every_entry_once_with_the_filters_kept(api: Api, clock: FrozenClock) -> None:
    for n in range(7):
        deactivate(api, f"c{n}")
        if n % 2:
            clock.advance(seconds=1)  # pairs share a moment: the cursor must split them right
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "action": "candidate.deactivated"}
        if cursor is not None:
            params["cursor"] = cursor
        answer = page(api.integration, **params)
        pages += 1
        seen += subjects(answer["items"])
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"c{n}" for n in reversed(range(7))]
    assert pages == 3
    # A page that happens to end with the last entry says so: no empty page after it.
    six = page(api.integration, limit=6)
    assert len(six["items"]) == 6 and six["next_cursor"] is not None
    rest = page(api.integration, limit=6, cursor=six["next_cursor"])
    assert subjects(rest["items"]) == ["c0"] and rest["next_cursor"] is None
    seven = page(api.integration, limit=7)
    assert len(seven["items"]) == 7 and seven["next_cursor"] is None


def test_only_the_integration_key_reads_it(world: World) -> None:
    """A user token is refused as on every integration endpoint (403), admins included; no key
    or a wrong one is 401."""
    for role in ("emp_admin", "cand"):
        assert_error(world[role].get("/api/v1/audit"), 403, "integration_key_required")
    assert_error(world.api.client.get("/api/v1/audit"), 401)
    wrong = As(world.api.client, "not-a-key")
    assert_error(wrong.get("/api/v1/audit"), 401)


# Each (parameter, value) alone in a request: a 422 naming that parameter.
BAD = [
    ("action", "message.created"),  # an event type, not an audited action
    ("action", ""),
    ("since", "yesterday"),
    ("since", "2026-01-05T09:00:00"),  # no offset: which 09:00?
    ("limit", "0"),
    ("limit", "201"),
    ("limit", "ten"),
    ("cursor", "not-a-cursor"),
    # What a cursor is made of (base64 of JSON), but nothing this server gave out.
    ("cursor", b64(["x", 1])),
    ("cursor", b64(["2026-01-05T09:00:00+00:00", 0])),
    ("cursor", b64(["2026-01-05T09:00:00+00:00", "1"])),
    ("cursor", b64(["2026-01-05T09:00:00", 1])),  # a time without its offset
    ("cursor", b64(["2026-01-05T09:00:00+00:00", 1, 2])),
    ("cursor", b64(None)),
    ("cursor", "\x00"),
]


def test_a_bad_parameter_is_a_422_naming_it(api: Api) -> None:
    for param, value in BAD:
        response = api.integration.get("/api/v1/audit", **{param: value})
        assert_error(response, 422, fields={param})


def test_a_cursor_from_a_page_is_taken_back(api: Api) -> None:
    """The cursor the server gives out is what it takes: one made from a real page round-trips,
    even after the entry it points at is older than every new one."""
    deactivate(api, "c1")
    deactivate(api, "c2")
    first = page(api.integration, limit=1)
    deactivate(api, "c3")  # newer than everything: not on the pages after the cursor
    rest = page(api.integration, limit=5, cursor=first["next_cursor"])
    assert subjects(first["items"]) == ["c2"]
    assert subjects(rest["items"]) == ["c1"]

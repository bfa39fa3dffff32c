"""The webhooks API: registering an endpoint (its secret shown once), listing, deleting,
rotating, re-enabling; the URL rules (https on a public address, unless insecure mode) and the
event types it takes; the integration key only."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from tests.support import As, World, assert_error, body

HOOKS = "/api/v1/webhooks"
EVENTS = ["message.created", "conversation.ended"]


@pytest.fixture
def key(world: World) -> As:
    return world.api.integration


def create(
    key: As, url: str = "https://ats.example.com/hooks", **extra: object
) -> dict[str, object]:
    return body(key.post(HOOKS, {"url": url, "events": EVENTS, **extra}), 201)


def test_created_with_a_secret_shown_once(key: As, clock: FrozenClock) -> None:
    made = create(key, description="Greenhouse")
    assert made["url"] == "https://ats.example.com/hooks"
    assert made["events"] == sorted(EVENTS)
    assert made["description"] == "Greenhouse"
    assert made["enabled"] is True
    assert made["created_at"] == clock.now().isoformat().replace("+00:00", "Z")
    secret = made["secret"]
    assert isinstance(secret, str) and secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    # Never again: the list has no secret.
    [listed] = body(key.get(HOOKS), 200)["items"]
    assert "secret" not in listed
    assert listed["id"] == made["id"]
    assert listed["failing_since"] is None
    assert create(key)["secret"] != secret


def test_deleted_it_is_gone(key: As) -> None:
    made = create(key)
    assert key.delete(f"{HOOKS}/{made['id']}").status_code == 204
    assert body(key.get(HOOKS), 200)["items"] == []
    assert_error(key.delete(f"{HOOKS}/{made['id']}"), 404, "not_found")
    assert_error(key.get(f"{HOOKS}/{made['id']}/deliveries"), 404, "not_found")
    assert_error(key.post(f"{HOOKS}/{made['id']}/rotate-secret"), 404, "not_found")


def test_rotating_gives_a_new_secret_once_and_keeps_the_old_a_day(
    key: As, clock: FrozenClock
) -> None:
    made = create(key)
    rotated = body(key.post(f"{HOOKS}/{made['id']}/rotate-secret"), 200)
    assert rotated["secret"] != made["secret"]
    assert str(rotated["secret"]).startswith("whsec_")
    until = (clock.now() + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert rotated["previous_secret_until"] == until
    [listed] = body(key.get(HOOKS), 200)["items"]
    assert "secret" not in listed


@pytest.mark.parametrize(
    "events",
    [["message.created", "message.exploded"], ["nope", "message.created", "also.nope"]],
)
def test_unknown_event_types_are_named(key: As, events: list[str]) -> None:
    r = key.post(HOOKS, {"url": "https://ats.example.com/h", "events": events})
    error = assert_error(r, 422, fields={"events"})
    for unknown in set(events) - {"message.created"}:
        assert unknown in error["fields"]["events"]


def test_no_event_types_is_refused(key: As) -> None:
    assert_error(key.post(HOOKS, {"url": "https://ats.example.com/h", "events": []}), 422)


@pytest.mark.parametrize(
    "url",
    [
        "http://ats.example.com/hooks",  # not https
        "https://127.0.0.1/hooks",  # loopback
        "https://10.1.2.3/hooks",  # private
        "https://169.254.169.254/latest",  # link-local (cloud metadata)
        "https://localhost:8443/hooks",
        "https://[::1]/hooks",
        "ftp://ats.example.com/hooks",
        "not a url",
        "https://user:pw@ats.example.com/hooks",
        # Other spellings of loopback and of the metadata address.
        "https://2130706433/hooks",  # 127.0.0.1 as one decimal number
        "https://0x7f000001/hooks",
        "https://0177.0.0.1/hooks",  # octal
        "https://127.1/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[::ffff:a9fe:a9fe]/latest",  # 169.254.169.254, IPv4-mapped
        "https://2852039166/latest",  # 169.254.169.254 as one number
        "https://[fd00:ec2::254]/latest",  # AWS's IPv6 metadata address
    ],
)
def test_the_url_must_be_https_on_a_public_address(key: As, url: str) -> None:
    assert_error(key.post(HOOKS, {"url": url, "events": EVENTS}), 422, fields={"url"})


class TestInsecureMode:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"webhooks_allow_insecure": True})

    def test_http_and_loopback_are_taken(self, key: As) -> None:
        create(key, url="http://127.0.0.1:9/hooks")
        create(key, url="http://localhost:9/hooks")

    @pytest.mark.parametrize(
        "url",
        [
            "http://10.0.0.1/hooks",
            "http://169.254.169.254/latest",
            "http://[::ffff:10.0.0.1]/hooks",
            "http://2130706433/hooks",  # loopback, but not in its usual form
        ],
    )
    def test_private_addresses_are_still_refused(self, key: As, url: str) -> None:
        r = key.post(HOOKS, {"url": url, "events": EVENTS})
        assert_error(r, 422, fields={"url"})


def test_only_the_integration_key(client: TestClient, world: World, key: As) -> None:
    made = create(key)
    user = world["emp_admin"]
    calls = [
        ("post", HOOKS),
        ("get", HOOKS),
        ("delete", f"{HOOKS}/{made['id']}"),
        ("post", f"{HOOKS}/{made['id']}/rotate-secret"),
        ("post", f"{HOOKS}/{made['id']}/enable"),
        ("get", f"{HOOKS}/{made['id']}/deliveries"),
    ]
    for method, path in calls:
        assert_error(client.request(method, path), 401)
        bad = client.request(method, path, headers={"Authorization": "Bearer nope"})
        assert_error(bad, 401)
        r = client.request(method, path, headers=user.headers)
        assert_error(r, 403, "integration_key_required")
    assert len(body(key.get(HOOKS), 200)["items"]) == 1


def test_at_most_fifty_webhooks(key: As) -> None:
    for _ in range(50):
        create(key)
    assert_error(
        key.post(HOOKS, {"url": "https://ats.example.com/h", "events": EVENTS}),
        409,
        "too_many_webhooks",
    )

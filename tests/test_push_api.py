"""The push API: the VAPID key (made once, kept, or set), and a user's own subscriptions
(201/200/204/404/422), by token or by session with CSRF."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from py_vapid.utils import b64urlencode

from jobchat.app import create_app
from jobchat.auth.csrf import csrf_token
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.push.actions import MAX_SUBSCRIPTIONS_PER_USER
from jobchat.push.models import MAX_ENDPOINT_CHARS
from tests.push_service import PushService, b64url
from tests.support import API_KEY, Api, As, World, assert_error, body

ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123"
SUBS = "/api/v1/push/subscriptions"


@pytest.fixture(scope="module")
def service() -> PushService:
    # Never started: only its browsers' keys are used here.
    return PushService()


def subscription(service: PushService, endpoint: str = ENDPOINT) -> dict[str, object]:
    sub = service.subscription("b").json()
    sub["endpoint"] = endpoint
    return sub


def public_key_of(settings: Settings, db: Database, clock: FrozenClock) -> str:
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        api = Api(client)
        api.org("acme", "Acme", "employer")
        api.staff("k", "Kim Key", "acme")
        key: str = body(api.as_staff("k").get("/api/v1/push/key"), 200)["public_key"]
        return key


def test_the_key_is_an_uncompressed_p256_point_made_once_and_kept(
    world: World, settings: Settings, db: Database, clock: FrozenClock
) -> None:
    key = body(world["cand"].get("/api/v1/push/key"), 200)["public_key"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert "=" not in key and len(raw) == 65 and raw[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    assert body(world["emp_team"].get("/api/v1/push/key"), 200)["public_key"] == key
    # Another process (a new app on the same database) signs with the same key.
    assert public_key_of(settings, Database(str(db.engine.url)), clock) == key


@pytest.mark.parametrize("form", ["pem", "raw"])
def test_the_key_setting_overrides_the_stored_one(
    world: World, settings: Settings, db: Database, clock: FrozenClock, form: str
) -> None:
    stored = body(world["cand"].get("/api/v1/push/key"), 200)["public_key"]
    private = ec.generate_private_key(ec.SECP256R1())
    expected = b64urlencode(
        private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    if form == "pem":
        value = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    else:
        value = b64url(private.private_numbers().private_value.to_bytes(32, "big"))
    configured = settings.model_copy(update={"vapid_private_key": value})
    key = public_key_of(configured, db, clock)
    assert key == expected != stored


def test_the_key_needs_a_signed_in_user(client: TestClient) -> None:
    assert_error(client.get("/api/v1/push/key"), 401)
    r = client.get("/api/v1/push/key", headers={"Authorization": f"Bearer {API_KEY}"})
    assert_error(r, 403)


def test_subscribe_list_resubscribe_and_delete(world: World, service: PushService) -> None:
    cand, team = world["cand"], world["emp_team"]
    sub = subscription(service)
    created = body(cand.post(SUBS, json=sub), 201)
    assert set(created) == {"id", "endpoint", "created_at"}
    assert created["endpoint"] == ENDPOINT
    # The same browser again (new keys, say): 200, the same subscription.
    again = body(cand.post(SUBS, json=subscription(service)), 200)
    assert again["id"] == created["id"]
    assert body(cand.get(SUBS), 200)["items"] == [created]
    assert body(team.get(SUBS), 200)["items"] == []
    # Someone else can neither see nor delete it.
    assert_error(team.delete(f"{SUBS}/{created['id']}"), 404)
    assert_error(cand.delete(f"{SUBS}/999999"), 404)
    assert cand.delete(f"{SUBS}/{created['id']}").status_code == 204
    assert body(cand.get(SUBS), 200)["items"] == []
    assert_error(cand.delete(f"{SUBS}/{created['id']}"), 404)


def test_a_browser_belongs_to_whoever_subscribed_last(world: World, service: PushService) -> None:
    cand, team = world["cand"], world["emp_team"]
    first = body(cand.post(SUBS, json=subscription(service)), 201)
    moved = body(team.post(SUBS, json=subscription(service)), 200)
    assert moved["id"] == first["id"]
    assert body(cand.get(SUBS), 200)["items"] == []
    assert [s["id"] for s in body(team.get(SUBS), 200)["items"]] == [first["id"]]


def test_the_oldest_subscriptions_go_beyond_the_cap(
    world: World, service: PushService, clock: FrozenClock
) -> None:
    cand = world["cand"]
    ids = []
    for n in range(MAX_SUBSCRIPTIONS_PER_USER + 2):
        clock.advance(seconds=1)
        ids.append(body(cand.post(SUBS, json=subscription(service, f"{ENDPOINT}/{n}")), 201)["id"])
    kept = [s["id"] for s in body(cand.get(SUBS), 200)["items"]]
    assert kept == ids[2:]


def _keys(p256dh: str | None = None, auth: str | None = None) -> dict[str, object]:
    browser = PushService().subscription("x")
    return {"p256dh": p256dh or browser.p256dh, "auth": auth or browser.auth}


NOT_ON_CURVE = b64url(b"\x04" + b"\x01" * 64)
COMPRESSED = b64url(b"\x02" + b"\x01" * 32)


@pytest.mark.parametrize(
    ("sub", "field"),
    [
        ({"endpoint": "http://push.example.com/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://127.0.0.1/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://[::1]/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://[::ffff:10.0.0.1]/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://169.254.169.254/latest", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://10.1.2.3/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://localhost/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://2130706433/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "ftp://push.example.com/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "not a url", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://push.example.com/" + "x" * 2000, "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://push.example.com/" + "x" * 980, "keys": _keys()}, "endpoint"),
        # Other spellings of 127.0.0.1 and 10.0.0.1 that aiohttp (yarl) would connect to.
        ({"endpoint": "https://127.0.0.\uff11/x", "keys": _keys()}, "endpoint"),
        (
            {"endpoint": "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x", "keys": _keys()},
            "endpoint",
        ),
        ({"endpoint": "https://10\u30020\u30020\u30021/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://[::7f00:1]/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://[fec0::1]/x", "keys": _keys()}, "endpoint"),
        ({"endpoint": "https://[64:ff9b:1::a00:1]/x", "keys": _keys()}, "endpoint"),
        # Long and not ASCII: once a 500 on PostgreSQL (the unique index's row too big).
        ({"endpoint": "https://push.example.com/" + "\u00e9" * 1500, "keys": _keys()}, "endpoint"),
        ({"endpoint": ENDPOINT, "keys": _keys(p256dh="not base64!")}, "keys.p256dh"),
        ({"endpoint": ENDPOINT, "keys": _keys(p256dh=b64url(b"short"))}, "keys.p256dh"),
        ({"endpoint": ENDPOINT, "keys": _keys(p256dh=NOT_ON_CURVE)}, "keys.p256dh"),
        ({"endpoint": ENDPOINT, "keys": _keys(p256dh=COMPRESSED)}, "keys.p256dh"),
        ({"endpoint": ENDPOINT, "keys": _keys(auth=b64url(b"x" * 15))}, "keys.auth"),
        ({"endpoint": ENDPOINT, "keys": {"p256dh": _keys()["p256dh"]}}, "keys.auth"),
        ({"endpoint": ENDPOINT}, "keys"),
    ],
)
def test_bad_subscriptions_get_422_naming_the_field(
    world: World, sub: dict[str, object], field: str
) -> None:
    assert_error(world["cand"].post(SUBS, json=sub), 422, fields={field})
    assert body(world["cand"].get(SUBS), 200)["items"] == []


def test_an_endpoint_of_the_longest_length_is_taken(world: World, service: PushService) -> None:
    prefix = "https://push.example.com/"
    longest = prefix + "x" * (MAX_ENDPOINT_CHARS - len(prefix))
    created = body(world["cand"].post(SUBS, json=subscription(service, longest)), 201)
    assert created["endpoint"] == longest


def test_insecure_mode_allows_http_and_loopback(
    settings: Settings, db: Database, clock: FrozenClock, service: PushService
) -> None:
    insecure = settings.model_copy(update={"push_allow_insecure": True})
    with TestClient(create_app(insecure, db=db, clock=clock)) as client:
        api = Api(client)
        api.org("acme", "Acme", "employer")
        api.staff("k", "Kim Key", "acme")
        kim = api.as_staff("k")
        body(kim.post(SUBS, json=subscription(service, "http://127.0.0.1:9/push/1")), 201)
        # Private addresses other than loopback stay refused.
        r = kim.post(SUBS, json=subscription(service, "http://10.0.0.1/push/1"))
        assert_error(r, 422, fields={"endpoint"})


def test_session_writes_need_the_csrf_token(
    world: World, api: Api, client: TestClient, service: PushService
) -> None:
    browser = TestClient(client.app, base_url="http://testserver")
    link = body(api.integration.post("/api/v1/candidates/cand/login-links"), 201)["url"]
    browser.get(link, follow_redirects=False)
    assert body(browser.get("/api/v1/push/key"), 200)["public_key"]
    sub = subscription(service)
    r = browser.post(SUBS, json=sub, headers={"Origin": "http://testserver"})
    assert_error(r, 403, "csrf_failed")
    token = csrf_token(browser.cookies["jobchat_session"])
    headers = {"Origin": "http://testserver", "X-CSRF-Token": token}
    created = body(browser.post(SUBS, json=sub, headers=headers), 201)
    assert body(browser.get(SUBS), 200)["items"] == [created]
    assert browser.delete(f"{SUBS}/{created['id']}").status_code == 403
    assert browser.delete(f"{SUBS}/{created['id']}", headers=headers).status_code == 204


def signed_in_browser(api: Api, client: TestClient, ext_id: str) -> tuple[TestClient, str]:
    browser = TestClient(client.app, base_url="http://testserver")
    link = body(api.integration.post(f"/api/v1/candidates/{ext_id}/login-links"), 201)["url"]
    browser.get(link, follow_redirects=False)
    return browser, csrf_token(browser.cookies["jobchat_session"])


def test_signing_out_ends_the_sessions_subscriptions(
    world: World, api: Api, client: TestClient, service: PushService
) -> None:
    """On a shared computer the next person must not get the last one's notifications."""
    browser, token = signed_in_browser(api, client, "cand")
    headers = {"Origin": "http://testserver", "X-CSRF-Token": token}
    created = body(browser.post(SUBS, json=subscription(service), headers=headers), 201)
    kept = body(world["cand"].post(SUBS, json=subscription(service, f"{ENDPOINT}/t")), 201)
    listed = body(world["cand"].get(SUBS), 200)["items"]
    assert {s["id"] for s in listed} == {created["id"], kept["id"]}
    r = browser.post("/logout", data={"csrf": token}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    # Gone; the one subscribed with a token (still live) stays.
    assert body(world["cand"].get(SUBS), 200)["items"] == [kept]
    # The same browser, signed in again, subscribes anew.
    browser2, token2 = signed_in_browser(api, client, "cand")
    headers2 = {"Origin": "http://testserver", "X-CSRF-Token": token2}
    body(browser2.post(SUBS, json=subscription(service), headers=headers2), 201)


def test_revoking_a_token_ends_its_subscriptions(
    world: World, api: Api, service: PushService
) -> None:
    issued = body(api.integration.post("/api/v1/candidates/cand/tokens"), 201)
    phone = As(api.client, issued["token"])
    body(phone.post(SUBS, json=subscription(service)), 201)
    assert len(body(world["cand"].get(SUBS), 200)["items"]) == 1
    assert api.integration.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204
    assert body(world["cand"].get(SUBS), 200)["items"] == []

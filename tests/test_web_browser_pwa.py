"""The installable app in Chromium: the service worker installs, activates and controls the
pages; a push delivered through the DevTools protocol (as the browser's push service would)
shows the notification the payload describes, and a generic one when it cannot be read; the
offline page stands in for a page the network cannot bring, and the app comes back with it;
the notifications prompt after a send; quiet hours chosen in Settings at phone size.

Headless Chromium cannot reach a real push service, so the prompt test replaces
``pushManager.subscribe`` with an init script answering a PushSubscription-like object whose
``toJSON()`` gives a loopback endpoint and real P-256 keys: the stand-in for the push service,
which is outside the machine. Everything else is the real browser, worker and server.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    OMAR,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    assert_in_viewport,
    assert_touch_target,
    shot,
)

pytestmark = BROWSER_TESTS

OFFLINE_TITLE = "You\u2019re offline"
CONTROLLED = "() => navigator.serviceWorker.controller !== null"
NOTIFICATIONS_JS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications();
  return shown.map((n) => ({
    title: n.title, body: n.body, tag: n.tag, data: n.data, icon: n.icon,
  }));
}"""


def controlled_page(browsers: Browsers, sign_in: SignIn, who: str, path: str) -> Page:
    """A signed-in page the service worker controls (registered by push.js on first load)."""
    page = browsers.open("desktop")
    sign_in(page, who, next=path)
    page.wait_for_function(CONTROLLED)
    return page


def registration_id(cdp: CDPSession, base: str) -> str:
    """The id DevTools gives the worker registration of our origin's scope."""
    found: dict[str, str] = {}

    def updated(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if registration["scopeURL"] == base + "/" and not registration["isDeleted"]:
                found["id"] = registration["registrationId"]

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    cdp.send("ServiceWorker.enable")

    def reported() -> str | None:
        cdp.send("Runtime.evaluate", {"expression": "1"})  # lets the events arrive
        return found.get("id")

    registration: str = wait_for(reported, "DevTools to report the worker registration of /")
    return registration


def wait_for(check: Callable[[], Any], what: str, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def push_delivery(cdp: CDPSession, base: str, registration: str) -> Callable[[str], None]:
    """``push(payload)``: a push message delivered through DevTools, as the browser's push
    service would, returning once the worker's push event has ended, and only if it succeeded.

    ``ServiceWorker.deliverPushMessage`` answers before the event is even dispatched. The
    browser's own log of push events (DevTools' Background Services: "Push event completed")
    says when the worker's ``waitUntil``, its ``showNotification``, has settled. Read the
    notifications only after that: Chromium's ``getNotifications()`` deletes from its database a
    notification stored before the call but not yet on display, so a read while a
    ``showNotification`` is in flight loses that notification for good (it never comes back).
    """
    events: list[tuple[str, dict[str, str]]] = []

    def received(event: dict[str, Any]) -> None:
        logged = event["backgroundServiceEvent"]
        if logged["serviceWorkerRegistrationId"] == registration:
            metadata = {item["key"]: item["value"] for item in logged["eventMetadata"]}
            events.append((logged["eventName"], metadata))

    cdp.on("BackgroundService.backgroundServiceEventReceived", received)
    cdp.send("BackgroundService.setRecording", {"shouldRecord": True, "service": "pushMessaging"})
    cdp.send("BackgroundService.startObserving", {"service": "pushMessaging"})

    def ended(since: int) -> str | None:
        cdp.send("Runtime.evaluate", {"expression": "1"})  # lets the events arrive
        for name, metadata in events[since:]:
            if name == "Push event completed":
                return metadata.get("Status") or "(no status)"
        return None

    def push(payload: str) -> None:
        since = len(events)
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": base, "registrationId": registration, "data": payload},
        )
        status = wait_for(lambda: ended(since), f"the worker to handle the push {payload!r}")
        assert status == "Success", f"the worker's push event for {payload!r} ended: {status}"

    return push


def test_the_worker_installs_activates_and_controls_the_pages(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    page = controlled_page(browsers, sign_in, MARCUS, "/inbox")
    state = page.evaluate(
        """async () => {
          const registration = await navigator.serviceWorker.ready;
          const keys = await caches.keys();
          const cached = [];
          for (const key of keys) {
            const cache = await caches.open(key);
            for (const request of await cache.keys()) cached.push(new URL(request.url).pathname);
          }
          return { scope: registration.scope, active: registration.active.state,
                   script: registration.active.scriptURL, keys, cached };
        }"""
    )
    assert state["scope"] == web.base + "/"
    assert state["active"] == "activated"
    assert state["script"] == web.base + "/sw.js"
    assert len(state["keys"]) == 1 and state["keys"][0].startswith("jobchat-shell-")
    assert "/offline" in state["cached"] and "/static/app.css" in state["cached"]
    # Privacy: a signed-in page seen through the worker is never stored.
    page.goto("/settings")
    page.wait_for_function(CONTROLLED)
    cached = page.evaluate(
        """async () => {
          const out = [];
          for (const key of await caches.keys()) {
            const cache = await caches.open(key);
            for (const r of await cache.keys()) out.push(new URL(r.url).pathname);
          }
          return out;
        }"""
    )
    assert not {"/inbox", "/settings", "/"} & set(cached), cached
    assert not [path for path in cached if path.startswith("/api/")], cached


def test_a_push_shows_the_notification_its_payload_describes(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    page = controlled_page(browsers, sign_in, MARCUS, "/inbox")
    page.context.grant_permissions(["notifications"], origin=web.base)
    cdp = page.context.new_cdp_session(page)
    registration = registration_id(cdp, web.base)
    conv = web.conversation_of(MARCUS, "application")
    # Each push returns once the worker has handled it: its notification is shown by then.
    push = push_delivery(cdp, web.base, registration)

    first = {
        "type": "message",
        "conversation": conv,
        "message": 1,
        "title": "Hannah Okafor",
        "body": "Is the Monday shift still open?",
        "url": f"/conversations/{conv}?message=1",
    }
    push(json.dumps(first))
    shown = page.evaluate(NOTIFICATIONS_JS)
    assert len(shown) == 1, shown
    assert shown[0]["title"] == "Hannah Okafor"
    assert shown[0]["body"] == "Is the Monday shift still open?"
    assert shown[0]["tag"] == f"conversation-{conv}"
    assert shown[0]["data"]["url"] == f"/conversations/{conv}?message=1"
    assert "/static/icons/icon-192.png" in shown[0]["icon"]

    # A newer message of the same conversation replaces it (one per conversation).
    push(json.dumps(first | {"message": 2, "body": "Never mind, found it"}))
    assert [n["body"] for n in page.evaluate(NOTIFICATIONS_JS)] == ["Never mind, found it"]
    # A payload that cannot be read still shows something (a silent push is punished).
    push("not json {")
    generic = [n["title"] for n in page.evaluate(NOTIFICATIONS_JS) if n["tag"] == "jobchat"]
    assert generic == ["New message"]
    # A url elsewhere is never followed: the notification keeps a path of ours.
    push(json.dumps(first | {"conversation": 99, "url": "https://evil.example/phish"}))
    evil = [n for n in page.evaluate(NOTIFICATIONS_JS) if n["tag"] == "conversation-99"]
    assert [n["data"]["url"] for n in evil] == ["/"]


def test_offline_shows_the_offline_page_and_the_app_comes_back(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    browsers.allow_console(r"ERR_INTERNET_DISCONNECTED|WebSocket|FetchEvent")
    page = controlled_page(browsers, sign_in, MARCUS, "/inbox")
    context: BrowserContext = page.context
    context.set_offline(True)
    page.goto("/settings")
    expect(page.get_by_role("heading", name=OFFLINE_TITLE)).to_be_visible()
    expect(page.get_by_role("link", name="Try again")).to_be_visible()
    assert page.url.endswith("/settings")  # the page asked for keeps its address
    shot(page, "pwa-offline-desktop", full_page=False)
    # Still offline: trying again shows the offline page again, not a browser error.
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name="Try again").click()
    expect(page.get_by_role("heading", name=OFFLINE_TITLE)).to_be_visible()
    context.set_offline(False)  # the page reloads itself when the connection comes back
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    assert page.url.endswith("/settings")


def test_quiet_hours_chosen_in_settings_on_a_phone(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    page = browsers.open("phone")
    sign_in(page, OMAR, next="/settings")
    quiet = page.get_by_label("No push notifications or texts during quiet hours")
    expect(quiet).to_be_checked()  # a candidate's default
    expect(page.get_by_label("From")).to_have_value("21:00")
    page.get_by_label("From").fill("22:30")
    page.get_by_label("Until").fill("07:00")
    page.get_by_label("Text messages").check()
    assert_touch_target(page.get_by_role("button", name="Save settings"))
    assert_fits(page)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Your settings are saved.")).to_be_visible()
    me = web.call("GET", "/api/v1/me", token=web.token(OMAR))
    assert me["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert me["notifications"]["sms"] is True
    # The same start and end: the problem beside the field, nothing saved.
    page.get_by_label("Until").fill("22:30")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#quiet_end-error")).to_contain_text("is the same as the start")
    expect(page.get_by_label("Until")).to_have_attribute("aria-invalid", "true")
    assert_fits(page)
    assert web.call("GET", "/api/v1/me", token=web.token(OMAR))["quiet_hours"]["end"] == "07:00"


# --- the prompt after a send, and this device in Settings ----------------------------------------

# The browser's push service stands outside the machine: this stands in for it. subscribe()
# answers a PushSubscription-like object with a loopback endpoint and real keys (a P-256 point
# and a 16-byte secret), kept across page loads as a browser keeps its subscription.
FAKE_PUSH_SERVICE = """(sub) => {
  const stored = () => localStorage.getItem("test:push-subscribed") === "1";
  const make = () => ({
    endpoint: sub.endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true },
    toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: sub.keys }),
    unsubscribe: async () => { localStorage.removeItem("test:push-subscribed"); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    window.__subscribed_with = {
      userVisibleOnly: options.userVisibleOnly,
      keyBytes: new Uint8Array(options.applicationServerKey).length,
    };
    localStorage.setItem("test:push-subscribed", "1");
    return make();
  };
  PushManager.prototype.getSubscription = async function () { return stored() ? make() : null; };
}"""


def push_keys() -> dict[str, str]:
    """A browser's subscription keys: an uncompressed P-256 public point and an auth secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_push_service(page: Page, endpoint: str) -> None:
    page.add_init_script(
        script=f"({FAKE_PUSH_SERVICE})({json.dumps({'endpoint': endpoint, 'keys': push_keys()})})"
    )


def subscriptions(web: WebServer, who: str) -> list[str]:
    items = web.call("GET", "/api/v1/push/subscriptions", token=web.token(who))["items"]
    return [item["endpoint"] for item in items]


def test_the_prompt_after_a_send_turns_notifications_on_for_this_phone(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    recruiter = web.new_recruiter()
    conv = web.application_chat(web.new_applicant(), staff=recruiter)
    endpoint = f"http://127.0.0.1:9/push/{secrets.token_urlsafe(12)}"
    page = browsers.open("phone")
    fake_push_service(page, endpoint)
    sign_in(page, recruiter, next=f"/conversations/{conv}")
    page.wait_for_function(CONTROLLED)
    prompt = page.get_by_role("region", name="Get a notification when someone replies?")
    expect(prompt).to_be_hidden()  # never on first load
    assert page.evaluate("() => Notification.permission") == "default"

    page.locator("#composer textarea").fill("Thanks for applying! Could we talk on Monday?")
    page.locator("#composer button.send").click()
    expect(prompt).to_be_visible()
    assert_fits(page)
    shot(page, "pwa-prompt-phone", docs=True, full_page=False)

    # The person says yes to the browser's own question (outside the page: granted here).
    page.context.grant_permissions(["notifications"], origin=web.base)
    prompt.get_by_role("button", name="Turn on notifications").click()
    expect(prompt.get_by_role("status")).to_have_text("Notifications are on for this device.")
    assert page.evaluate("() => window.__subscribed_with") == {
        "userVisibleOnly": True,
        "keyBytes": 65,  # the server's VAPID key, an uncompressed P-256 point
    }
    assert subscriptions(web, recruiter) == [endpoint]
    expect(prompt).to_be_hidden(timeout=10_000)

    # Settings knows this device is on, and turning it off deletes the subscription.
    page.goto("/settings")
    device = page.locator("#push-device")
    expect(device.locator(".push-device-state")).to_have_text(
        "Notifications are on for this device."
    )
    device.get_by_role("button", name="Turn off on this device").click()
    expect(device.locator(".push-device-state")).to_have_text(
        "Notifications are off for this device."
    )
    assert subscriptions(web, recruiter) == []


def test_not_now_is_remembered(browsers: Browsers, sign_in: SignIn, web: WebServer) -> None:
    recruiter = web.new_recruiter()
    conv = web.application_chat(web.new_applicant(), staff=recruiter)
    page = browsers.open("phone")
    sign_in(page, recruiter, next=f"/conversations/{conv}")
    prompt = page.get_by_role("region", name="Get a notification when someone replies?")

    def send(text: str, sends: int) -> None:
        page.locator("#composer textarea").fill(text)
        page.locator("#composer button.send").click()
        expect(page.locator("#messages").get_by_text(text)).to_be_visible()
        # push.js's handler of the send has run and decided (not merely: not yet shown).
        expect(page.locator("#push-prompt")).to_have_attribute("data-sent", str(sends))

    send("First message", 1)
    expect(prompt).to_be_visible()
    prompt.get_by_role("button", name="Not now").click()
    expect(prompt).to_be_hidden()
    send("Second message", 2)
    expect(page.locator("#push-prompt")).to_have_attribute("data-decision", "later")
    expect(prompt).to_be_hidden()
    page.reload()
    send("Third message", 1)
    expect(page.locator("#push-prompt")).to_have_attribute("data-decision", "later")
    expect(prompt).to_be_hidden()


def test_signing_out_unsubscribes_this_browser(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    recruiter = web.new_recruiter()
    endpoint = f"http://127.0.0.1:9/push/{secrets.token_urlsafe(12)}"
    page = browsers.open("desktop")
    fake_push_service(page, endpoint)
    page.context.grant_permissions(["notifications"], origin=web.base)
    sign_in(page, recruiter, next="/settings")
    page.wait_for_function(CONTROLLED)
    device = page.locator("#push-device")
    device.get_by_role("button", name="Turn on for this device").click()
    expect(device.locator(".push-device-state")).to_have_text(
        "Notifications are on for this device."
    )
    assert subscriptions(web, recruiter) == [endpoint]

    page.locator("details.whoami summary").click()  # the person's menu
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out of jobchat.")).to_be_visible()
    # The browser dropped its subscription, and the server keeps none for this person: the
    # next one to use this device gets none of their notifications.
    assert page.evaluate("() => localStorage.getItem('test:push-subscribed')") is None
    assert subscriptions(web, recruiter) == []


def test_an_iphone_outside_the_home_screen_is_told_to_add_it_first(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    recruiter = web.new_recruiter()
    conv = web.application_chat(web.new_applicant(), staff=recruiter)
    page = browsers.open("phone")
    # Safari on an iPhone, in a tab: no Web Push there (only in the Home Screen app).
    page.add_init_script(
        script="""Object.defineProperty(navigator, "userAgent", { get: () =>
          "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
          + "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1" });
        delete window.PushManager;"""
    )
    sign_in(page, recruiter, next=f"/conversations/{conv}")
    page.locator("#composer textarea").fill("Hello from an iPhone")
    page.locator("#composer button.send").click()
    prompt = page.get_by_role("region", name="Want notifications on your iPhone or iPad?")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("Add jobchat to your Home Screen first")
    expect(prompt.get_by_role("button", name="Turn on notifications")).to_be_hidden()
    prompt.get_by_role("button", name="OK").click()
    expect(prompt).to_be_hidden()
    page.goto("/settings")
    expect(page.locator("#push-device .push-device-state")).to_contain_text("Home Screen")


def test_a_notifications_link_shows_its_message_or_says_it_was_deleted(
    browsers: Browsers, sign_in: SignIn, web: WebServer
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    notified = web.send(MARCUS, conv, "The one you were told about")
    for i in range(30):  # enough newer messages that it is not where the page opens
        web.send(MARCUS, conv, f"Later message {i}")
    page = browsers.open("phone")
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}?message={notified['id']}")
    item = page.locator(f'#messages li.message[data-message-id="{notified["id"]}"]')
    expect(item).to_have_class(re.compile(r"\bnotified\b"))
    assert_in_viewport(page, item)

    gone = web.send(MARCUS, conv, "Sent to the wrong person")
    web.call("DELETE", f"/api/v1/messages/{gone['id']}?for=everyone", token=web.token(MARCUS))
    page.goto(f"/conversations/{conv}?message={gone['id']}")
    expect(page.get_by_role("status").filter(has_text="notified about")).to_have_text(
        "The message you were notified about was deleted."
    )
    expect(page.locator("li.message.notified")).to_have_count(0)

"""The installable app, in-process: the manifest and its icons, the service worker's file, the
offline page, the policy that lets them work, and the conversation page opened from a
notification (?message=)."""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from jobchat.web.security import CSP
from tests.support import Api, World, sent, start
from tests.web_support import Browser, texts


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


@pytest.fixture
def tess(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "emp_team")


@pytest.fixture
def carla(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "cand")


def test_the_manifest_names_the_app_and_its_icons(client: TestClient) -> None:
    r = client.get("/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/manifest+json")
    manifest = r.json()
    assert manifest["name"] == manifest["short_name"] == "jobchat"
    assert manifest["description"]
    assert (manifest["id"], manifest["start_url"], manifest["scope"]) == ("/", "/", "/")
    assert manifest["display"] == "standalone"
    # The top bar's and the page's colours (app.css: --card, --bg).
    assert (manifest["theme_color"], manifest["background_color"]) == ("#ffffff", "#f5f7fa")
    found = set()
    for icon in manifest["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(image.content))
        assert picture.format == "PNG"
        assert icon["sizes"] == f"{picture.width}x{picture.height}"
        assert icon["type"] == "image/png"
        found.add((picture.width, icon["purpose"]))
    assert {(192, "any"), (512, "any"), (512, "maskable")} <= found
    # A maskable icon fills its square: the corners are the brand colour, not transparent.
    maskable = next(i for i in manifest["icons"] if i["purpose"] == "maskable")
    square = Image.open(io.BytesIO(client.get(maskable["src"]).content)).convert("RGBA")
    assert square.getpixel((0, 0)) == (0x24, 0x57, 0xC5, 255)


def test_every_page_links_the_manifest_and_the_home_screen_icon(
    client: TestClient, tess: Browser
) -> None:
    for html in (tess.page("/inbox"), client.get("/").text):
        assert '<link rel="manifest" href="/manifest.webmanifest">' in html
        assert re.search(
            r'name="theme-color" content="#ffffff" media="\(prefers-color-scheme: light\)"', html
        )
        assert re.search(
            r'name="theme-color" content="#171e2b" media="\(prefers-color-scheme: dark\)"', html
        )
        assert '<meta name="apple-mobile-web-app-capable" content="yes">' in html
        assert '<meta name="apple-mobile-web-app-title" content="jobchat">' in html
        icon = re.search(r'rel="apple-touch-icon" href="([^"]+)"', html)
        assert icon is not None
        picture = Image.open(io.BytesIO(client.get(icon.group(1)).content))
        assert picture.size == (180, 180)
    assert "push.js" in tess.page("/inbox")


def test_the_service_worker_is_served_fresh_for_the_whole_site(client: TestClient) -> None:
    r = client.get("/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["service-worker-allowed"] == "/"
    source = r.text
    # The shell it caches: the offline page and versioned assets that exist, nothing personal.
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", source).group(1))  # type: ignore[union-attr]
    assert shell[0] == "/offline"
    for url in shell:
        assert client.get(url).status_code == 200, url
        assert url == "/offline" or re.fullmatch(r"/static/[\w/.-]+\?v=[0-9a-f]{12}", url)
    version = re.search(r'const VERSION = "([0-9a-f]{12})"', source)
    assert version is not None
    for handler in ("install", "activate", "fetch", "push", "notificationclick"):
        assert f'addEventListener("{handler}"' in source
    assert "New message" in source  # the notification when a payload cannot be read


def test_the_offline_page_needs_no_sign_in_and_carries_nothing_personal(
    client: TestClient,
) -> None:
    r = client.get("/offline")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"
    assert "You\u2019re offline" in r.text and "reconnect" in r.text
    assert 'id="retry"' in r.text and "offline.js" in r.text
    assert "csrf" not in r.text and "data-me" not in r.text


def test_the_policy_allows_our_own_worker_and_manifest_only(client: TestClient) -> None:
    policy = client.get("/sw.js").headers["content-security-policy"]
    assert policy == CSP
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["worker-src"] == "'self'"
    assert directives["manifest-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"


def test_a_notified_message_is_marked_for_the_page_to_show(
    tess: Browser, carla: Browser, world: World, chat: int
) -> None:
    message = sent(world["emp_team"].send(chat, "Can you start Monday?"))
    html = carla.page(f"/conversations/{chat}", message=message["id"])
    assert f'data-notified="{message["id"]}"' in html
    assert "was deleted" not in html
    # No ?message=, or one of another conversation: nothing to say.
    assert "data-notified" not in carla.page(f"/conversations/{chat}")
    other = start(world["emp_team"], "application", application="app2")
    elsewhere = sent(world["emp_team"].send(other, "Elsewhere"))
    html = carla.page(f"/conversations/{chat}", message=elsewhere["id"])
    assert "data-notified" not in html and "was deleted" not in html
    # Not a message id at all: the page's own error, never a 500.
    assert carla.client.get(f"/conversations/{chat}", params={"message": "x"}).status_code == 422


@pytest.mark.parametrize("how", ["everyone", "me"])
def test_a_deleted_notified_message_is_said_to_be_deleted(
    tess: Browser, carla: Browser, world: World, chat: int, how: str
) -> None:
    message = sent(world["emp_team"].send(chat, "Oops, wrong person"))
    deleter = tess if how == "everyone" else carla
    assert deleter.form(f"/messages/{message['id']}/delete", {"for": how}).status_code == 303
    html = carla.page(f"/conversations/{chat}", message=message["id"])
    assert texts(html, "notified-notice") == ["The message you were notified about was deleted."]
    assert "data-notified" not in html
    assert "Oops, wrong person" not in html

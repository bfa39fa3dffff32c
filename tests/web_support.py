"""A browser session in-process: signed in through a one-time link, posting our forms with the
session's CSRF token, reading pages as HTML."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobchat.auth.csrf import csrf_token
from tests.support import Api, World

ORIGIN = "http://testserver"


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    @classmethod
    def signed_in(cls, client: TestClient, api: Api, ext_id: str) -> Browser:
        kind = "candidates" if ext_id.startswith("cand") else "users"
        link = api.integration.post(f"/api/v1/{kind}/{ext_id}/login-links")
        assert link.status_code == 201, link.text
        browser = cls(TestClient(client.app, base_url=ORIGIN))
        signed = browser.client.get(link.json()["url"], follow_redirects=False)
        assert signed.status_code == 303, signed.text
        return browser

    @property
    def csrf(self) -> str:
        return csrf_token(self.client.cookies["jobchat_session"])

    def page(self, path: str, status: int = 200, **params: Any) -> str:
        r = self.client.get(path, params=params or None, follow_redirects=False)
        assert r.status_code == status, (r.status_code, r.text[:2000])
        assert r.headers["content-type"].startswith("text/html"), r.headers
        html: str = r.text
        return html

    def form(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        fields = dict(data or {})
        if csrf:
            fields["csrf"] = self.csrf
        r: httpx.Response = self.client.post(
            path, data=fields, headers={"Origin": ORIGIN}, follow_redirects=False
        )
        return r

    def api(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """Our script's calls: the session cookie with the CSRF header."""
        r: httpx.Response = self.client.request(
            method, path, json=json, headers={"Origin": ORIGIN, "X-CSRF-Token": self.csrf}
        )
        return r


# The standard cast signed in, for the page tests (conftest.py hands them to pytest).


@pytest.fixture
def tess(client: TestClient, api: Api, world: World) -> Browser:
    """Tess of the employer team, signed in."""
    return Browser.signed_in(client, api, "emp_team")


@pytest.fixture
def carla(client: TestClient, api: Api, world: World) -> Browser:
    """Carla the candidate, signed in."""
    return Browser.signed_in(client, api, "cand")


def texts(html: str, css_class: str) -> list[str]:
    """The text of each element with this class (enough for our own flat markup)."""
    pattern = rf'class="[^"]*\b{re.escape(css_class)}\b[^"]*"[^>]*>(.*?)</'
    return [unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in re.findall(pattern, html, re.S)]


def conversation_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-conversation="(\d+)"', html)]


def message_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-message-id="(\d+)"', html)]

"""A browser's push service on loopback, speaking RFC 8030 for real, for the push tests and
bench/bench_push.py.

The test plays the browser: ``subscription(name)`` makes the EC key pair and 16-byte auth
secret a browser would, and gives the JSON a browser's ``PushSubscription.toJSON()`` gives
(POST it to /api/v1/push/subscriptions). Each push must carry a VAPID authorization (RFC 8292)
whose JWT signature checks out against its k= key (py_vapid) with a sound aud/exp/sub,
``Content-Encoding: aes128gcm`` and a TTL; its body is decrypted (http_ece, RFC 8291) with the
subscription's private key and auth secret, and recorded in ``received``. A push that fails a
check is answered as a real service would (400/401/403/413) and recorded in ``rejected``.
``answer(name, [429, 201])`` scripts the next answers for one subscription.

    service = PushService().start()
    browser = service.subscription("phone")
    api.post("/api/v1/push/subscriptions", json=browser.json())
    ... drain the worker ...
    [push] = service.to("phone"); push.payload["title"]
    service.stop()
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import http_ece
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from jobchat.config import Settings

# RFC 8030 section 7.2: a push service must accept at least 4096 bytes of payload.
MAX_PAYLOAD_BYTES = 4096
MAX_JWT_LIFETIME = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Browser:
    """One browser's subscription: its keys (private ones kept here) and its endpoint."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    # The application-server key the browser subscribed with (PushManager.subscribe's
    # applicationServerKey); when set, a push signed with another key is refused (403).
    server_key: str | None = None

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def json(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives, extra field included."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass(frozen=True)
class Push:
    """A push the service accepted and decrypted."""

    subscription: str  # the Browser's name
    headers: dict[str, str]
    payload: dict[str, Any]
    claims: dict[str, Any]
    at: float  # time.time() when it arrived


@dataclass(frozen=True)
class Attempt:
    """Every request to an endpoint, with the status it was answered."""

    subscription: str
    status: int
    reason: str = ""


@dataclass
class PushService:
    port: int = field(default_factory=_free_port)
    host: str = "127.0.0.1"
    received: list[Push] = field(default_factory=list)
    rejected: list[Attempt] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _browsers: dict[str, Browser] = field(default_factory=dict)  # by endpoint path token
    _script: dict[str, list[int | tuple[int, dict[str, str]]]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    # --- the test's side ----------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def subscription(
        self, name: str, *, server_key: str | None = None, origin: str | None = None
    ) -> Browser:
        """A new browser subscription called ``name``. ``origin`` replaces this service's
        in the endpoint (say https://localhost:<port>, to see the guard refuse it)."""
        token = f"{name}-{secrets.token_urlsafe(12)}"
        browser = Browser(
            name=name,
            endpoint=f"{origin or self.origin}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
            server_key=server_key,
        )
        with self.lock:
            self._browsers[token] = browser
        return browser

    def answer(self, name: str, statuses: Sequence[int | tuple[int, dict[str, str]]]) -> None:
        """Answer the next pushes to ``name`` (a subscription's name or its endpoint) with
        these statuses (optionally with headers, e.g. ``(429, {"Retry-After": "1"})``) instead
        of 201, one each, in order."""
        with self.lock:
            by_endpoint = {b.endpoint: b.name for b in self._browsers.values()}
            name = by_endpoint.get(name, name)
            self._script.setdefault(name, []).extend(statuses)

    def to(self, name: str) -> list[Push]:
        with self.lock:
            return [p for p in self.received if p.subscription == name]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Push]:
        """For tests against a server process: wait until ``count`` pushes arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} pushes arrived, not {count}")

    # --- running ------------------------------------------------------------------------

    def start(self) -> PushService:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="push-service", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(10)
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/push/{token}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    # --- the push service's side --------------------------------------------------------

    async def _push(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        with self.lock:
            browser = self._browsers.get(token)
        if browser is None:
            return web.Response(status=404, text="no such subscription")
        body = await request.read()
        status, reason, push = self._check(browser, request, body)
        if status != 201:
            return self._record(browser.name, status, reason, rejected=True)
        with self.lock:
            script = self._script.get(browser.name)
            scripted = script.pop(0) if script else None
        if scripted is not None:
            code, headers = scripted if isinstance(scripted, tuple) else (scripted, {})
            if not 200 <= code < 300:
                return self._record(browser.name, code, "scripted", headers=headers)
        assert push is not None
        with self.lock:
            self.received.append(push)
            self.attempts.append(Attempt(browser.name, 201))
        # RFC 8030 5: 201 Created, Location naming the push message resource.
        return web.Response(
            status=201, headers={"Location": f"{self.origin}/message/{secrets.token_urlsafe(8)}"}
        )

    def _record(
        self,
        name: str,
        status: int,
        reason: str,
        *,
        rejected: bool = False,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        with self.lock:
            self.attempts.append(Attempt(name, status, reason))
            if rejected:
                self.rejected.append(Attempt(name, status, reason))
        return web.Response(status=status, text=reason, headers=headers)

    def _check(
        self, browser: Browser, request: web.Request, body: bytes
    ) -> tuple[int, str, Push | None]:
        """(201, "", the push) when the request is a sound push; else the status and why."""
        auth = request.headers.get("Authorization", "")
        params = _vapid_params(auth)
        if params is None:
            return 401, "Authorization must be vapid t=<JWT>, k=<key>", None
        try:
            signed = Vapid02.verify(auth)
        except Exception as exc:
            return 401, f"bad VAPID authorization: {exc}", None
        if not signed:
            return 401, "the VAPID JWT's signature does not match k", None
        if browser.server_key is not None and params["k"] != browser.server_key:
            return 403, "signed with another key than the subscription's", None
        claims = json.loads(unb64url(params["t"].split(".")[1]))
        now = time.time()
        if claims.get("aud") != self.origin and claims.get("aud") != _origin(browser.endpoint):
            return 401, f"aud {claims.get('aud')!r} is not this push service", None
        exp = claims.get("exp")
        if not isinstance(exp, int) or not now < exp <= now + MAX_JWT_LIFETIME:
            return 401, f"exp {exp!r} is not within the next 24 hours", None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            return 401, f"sub {sub!r} is not a mailto: or https: contact", None
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            return 400, "TTL header missing or not a number", None
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return 415, "Content-Encoding must be aes128gcm", None
        if len(body) > MAX_PAYLOAD_BYTES:
            return 413, "payload too large", None
        try:
            plain = http_ece.decrypt(
                body,
                private_key=browser.private_key,
                auth_secret=browser.auth_secret,
                version="aes128gcm",
            )
            payload = json.loads(plain)
        except Exception as exc:
            return 400, f"cannot decrypt: {type(exc).__name__}: {exc}", None
        push = Push(browser.name, dict(request.headers), payload, claims, now)
        return 201, "", push


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _vapid_params(auth: str) -> dict[str, str] | None:
    scheme, _, rest = auth.partition(" ")
    if scheme.lower() != "vapid":
        return None
    params = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    return params if "t" in params and "k" in params else None


@pytest.fixture(scope="module", name="push_service")
def push_service_fixture() -> Iterator[PushService]:
    """One loopback push service for a test module (registered in tests/conftest.py); tests
    tell their pushes apart by the names of their browsers."""
    service = PushService().start()
    try:
        yield service
    finally:
        service.stop()


def allow_insecure_push(settings: Settings) -> Settings:
    """The loopback push service speaks plain http on 127.0.0.1, which the egress guard
    refuses unless told otherwise."""
    return settings.model_copy(update={"push_allow_insecure": True})


@pytest.fixture(name="settings")
def insecure_push_settings(settings: Settings) -> Settings:
    """For a test module that imports it: the settings, with pushes to loopback allowed."""
    return allow_insecure_push(settings)

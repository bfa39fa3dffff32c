"""An ATS's webhook endpoint on loopback, for the webhook tests: it checks the signature of
every request with the ``standardwebhooks`` package (the Standard Webhooks reference library,
not our code) and records what arrived.

Each endpoint has a name (the URL is ``/hooks/<name>``) and the secrets it verifies with:
``expect(name, secret)`` after creating the webhook. A request must verify against EACH of the
endpoint's secrets (during a rotation, the test gives old and new, and both must check out on
their own); one that does not is answered 401 and kept in ``rejected``. ``answer(name, [500,
"hang", (503, {"Retry-After": "120"})])`` scripts the next answers ("hang": no answer until the
sender gives up; a pair: a status with headers). ``stop()``
and ``start()`` take the whole receiver off the port and back (connection refused meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HANG_SECONDS = 5.0

# A scripted answer: a status, "hang", or a status with headers.
Answer = int | str | tuple[int, dict[str, str]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Received:
    """A request that verified, answered 2xx or not (``status``)."""

    endpoint: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.body["data"]
        return data


@dataclass
class Receiver:
    port: int = field(default_factory=_free_port)
    host: str = "127.0.0.1"
    requests: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _secrets: dict[str, list[str]] = field(default_factory=dict)
    _script: dict[str, list[Answer]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    # Called (on the receiver's thread) with each verified request before it is answered.
    on_request: Callable[[Received], None] | None = None

    # --- the test's side ----------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/hooks/{name}"

    def expect(self, name: str, *secrets: str) -> None:
        with self.lock:
            self._secrets[name] = list(secrets)

    def answer(self, name: str, answers: Sequence[Answer]) -> None:
        with self.lock:
            self._script.setdefault(name, []).extend(answers)

    def to(self, name: str) -> list[Received]:
        """Every verified request to ``name``, in arrival order."""
        with self.lock:
            return [r for r in self.requests if r.endpoint == name]

    def delivered(self, name: str) -> list[Received]:
        """The requests to ``name`` that were answered 2xx: what the ATS took."""
        return [r for r in self.to(name) if 200 <= r.status < 300]

    # --- running ------------------------------------------------------------------------

    def start(self) -> Receiver:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._thread = threading.Thread(target=loop.run_forever, name="hooks", daemon=True)
            self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Off the port (connection refused) until ``start()``."""
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None

    def close(self) -> None:
        self.stop()
        loop, self._loop = self._loop, None
        if loop is None:
            return
        # A "hang" answer may still be sleeping: the runner's cleanup leaves its handler to
        # finish, and a loop closed under it let Python report it destroyed while pending.
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._hook)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()

    # --- the ATS's side -----------------------------------------------------------------

    async def _hook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self.lock:
            secrets = list(self._secrets.get(name, []))
        problem = self._verify(raw, headers, secrets)
        if request.headers.get("Content-Type") != "application/json":
            problem = f"Content-Type is {request.headers.get('Content-Type')!r}"
        if problem is not None:
            with self.lock:
                self.rejected.append(f"{name}: {problem}")
            return web.Response(status=401, text=problem)
        with self.lock:
            script = self._script.get(name)
            scripted = script.pop(0) if script else 200
        extra: dict[str, str] = {}
        if isinstance(scripted, tuple):
            scripted, extra = scripted
        if scripted == "hang":
            await asyncio.sleep(HANG_SECONDS)
            scripted = 200  # too late: the sender has given up by now
        status = int(scripted)
        received = Received(name, headers, json.loads(raw), status)
        with self.lock:
            self.requests.append(received)
        if self.on_request is not None:
            self.on_request(received)
        text = "ok" if status < 300 else "not now"
        return web.Response(status=status, text=text, headers=extra)

    @staticmethod
    def _verify(raw: bytes, headers: dict[str, str], secrets: list[str]) -> str | None:
        if not secrets:
            return "no secret to verify with"
        for secret in secrets:
            try:
                Webhook(secret).verify(raw, headers)
            except WebhookVerificationError as exc:
                return f"does not verify with {secret[:10]}...: {exc}"
        return None


async def _cancel_the_rest() -> None:
    """Cancel every other task of the running loop and wait until each has ended."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.close()

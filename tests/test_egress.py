"""The outbound-request guard: which URLs and addresses it refuses, that a host name is judged
by the address it resolves to when the request is made, no redirects, and a capped answer."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from jobchat.egress import Egress, EgressRefused, GuardedConnector, address_allowed, url_problem
from tests.mail_support import free_port


@pytest.mark.parametrize(
    ("address", "strict", "insecure"),
    [
        ("8.8.8.8", True, True),
        ("2606:4700::1111", True, True),
        ("::ffff:8.8.8.8", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("10.0.0.1", False, False),
        ("172.16.5.4", False, False),
        ("192.168.1.1", False, False),
        ("::ffff:192.168.1.1", False, False),
        ("169.254.169.254", False, False),
        ("fe80::1", False, False),
        ("fc00::1", False, False),
        ("100.64.0.1", False, False),
        ("0.0.0.0", False, False),
        ("::", False, False),
        ("224.0.0.251", False, False),
        ("ff02::1", False, False),
        ("240.0.0.1", False, False),
        ("192.0.2.10", False, False),
        ("64:ff9b::a00:1", False, False),
        ("2002:a00:1::", False, False),
        # IPv4-compatible: judged as the IPv4 address it carries.
        ("::7f00:1", False, True),
        ("::a00:1", False, False),
        ("::808:808", True, True),
        ("fec0::1", False, False),
        ("64:ff9b:1::a00:1", False, False),
        ("64:ff9b:1::808:808", False, False),
        # IANA special-purpose blocks that Python 3.11 calls global.
        ("192.0.0.192", False, False),  # Oracle Cloud's instance metadata
        ("192.0.0.8", False, False),
        ("192.0.0.9", False, False),
        ("::ffff:192.0.0.192", False, False),
        ("64:ff9b::c000:c0", False, False),
        ("192.31.196.1", False, False),
        ("192.52.193.1", False, False),
        ("192.175.48.1", False, False),
        ("198.18.0.1", False, False),
        ("198.19.255.254", False, False),
        ("100.127.255.254", False, False),
        ("2001:4:112::1", False, False),
        ("2620:4f:8000::1", False, False),
        ("3fff::1", False, False),
        # Their neighbours are ordinary addresses.
        ("192.0.1.1", True, True),
        ("198.20.0.1", True, True),
        ("100.128.0.1", True, True),
    ],
)
def test_only_global_addresses_are_allowed(address: str, strict: bool, insecure: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert address_allowed(ip) is strict
    assert address_allowed(ip, allow_loopback=True) is insecure


ASCII_ONLY = "must be an ASCII host name (an international one in its xn-- form)"
# What yarl (so aiohttp) reads as 127.0.0.1 and 10.0.0.1: full-width digits, ideographic stops.
OTHER_SPELLINGS = [
    "https://127.0.0.\uff11/x",
    "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x",
    "https://10\u30020\u30020\u30021/x",
]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://fcm.googleapis.com/fcm/send/x", None),
        ("https://updates.push.services.mozilla.com/wpush/v2/x", None),
        ("https://8.8.8.8/x", None),
        ("https://push.example.com:8443/x", None),
        ("http://push.example.com/x", "must be an https:// URL"),
        ("https://127.0.0.1/x", "must be on a public address"),
        ("https://[::ffff:127.0.0.1]/x", "must be on a public address"),
        ("https://localhost./x", "must be on a public address"),
        ("https://printer.local/x", "must be on a public address"),
        ("https://0x7f.1/x", "must be a host name or an IP address in its usual form"),
        ("https://user:pw@push.example.com/x", "must not carry credentials"),
        ("https:///x", "must name a host"),
        ("https://push.example.com:70000/x", "is not a valid URL"),
        ("https://[::7f00:1]/x", "must be on a public address"),
        ("https://[fec0::1]/x", "must be on a public address"),
        ("https://[64:ff9b:1::a00:1]/x", "must be on a public address"),
        ("https://[0:0::1]/x", "must be on a public address"),
        ("https://192.0.0.192/x", "must be on a public address"),
        ("https://198.18.0.1/x", "must be on a public address"),
        ("https://xn--bcher-kva.example/x", None),
        *[(url, ASCII_ONLY) for url in OTHER_SPELLINGS],
        ("https://b\u00fccher.example/x", ASCII_ONLY),
    ],
)
def test_url_rules(url: str, problem: str | None) -> None:
    assert url_problem(url, allow_insecure=False) == problem


def test_insecure_mode_allows_http_and_loopback_only() -> None:
    assert url_problem("http://127.0.0.1:8080/x", allow_insecure=True) is None
    assert url_problem("http://localhost:8080/x", allow_insecure=True) is None
    assert url_problem("http://10.0.0.1/x", allow_insecure=True) == "must be on a public address"


def _loopback_names() -> list[str]:
    """This machine's own name, where it resolves to loopback (as on most)."""
    host = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, 443)}
    except OSError:
        return []
    return [host] if all(ipaddress.ip_address(a).is_loopback for a in found) else []


async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def test_a_name_resolving_to_loopback_is_refused_when_the_request_is_made() -> None:
    """A name that passes the URL check (this machine's name) is refused once resolved to
    127.0.0.1: the request never reaches the server listening there."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=201)

    async def run() -> None:
        runner, port = await _serve(handler)
        strict = Egress(allow_insecure=False, timeout_seconds=5)
        insecure = Egress(allow_insecure=True, timeout_seconds=5)
        try:
            for host in ("localhost", *_loopback_names()):
                with pytest.raises(EgressRefused):
                    await strict.post(f"https://{host}:{port}/x", data=b"", headers={})
            with pytest.raises(EgressRefused):
                await strict.post(f"https://127.0.0.1:{port}/x", data=b"", headers={})
            assert hits == []
            # Insecure (tests only): loopback is reached.
            answer = await insecure.post(f"http://localhost:{port}/ok", data=b"x", headers={})
            assert answer.status == 201 and hits == ["/ok"]
        finally:
            await strict.close()
            await insecure.close()
            await runner.cleanup()

    asyncio.run(run())


def test_redirects_are_not_followed_and_answers_are_capped() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == "/redirect":
            raise web.HTTPTemporaryRedirect("http://10.0.0.1/internal")
        return web.Response(status=400, body=b"x" * 1_000_000)

    async def run() -> None:
        runner, port = await _serve(handler)
        egress = Egress(allow_insecure=True, timeout_seconds=5, max_body=1000)
        try:
            answer = await egress.post(f"http://127.0.0.1:{port}/redirect", data=b"", headers={})
            assert answer.status == 307
            answer = await egress.post(f"http://127.0.0.1:{port}/big", data=b"", headers={})
            assert answer.status == 400 and len(answer.body) <= 1000
        finally:
            await egress.close()
            await runner.cleanup()

    asyncio.run(run())


def test_a_slow_service_times_out() -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(status=201)

    async def run() -> None:
        runner, port = await _serve(handler)
        egress = Egress(allow_insecure=True, timeout_seconds=0.2)
        try:
            with pytest.raises(TimeoutError):
                await egress.post(f"http://127.0.0.1:{port}/slow", data=b"", headers={})
        finally:
            await egress.close()
            await runner.cleanup()

    asyncio.run(run())


async def _listen() -> tuple[asyncio.Server, int, list[bytes]]:
    """A bare TCP listener on 127.0.0.1 that records every connection (and what it was sent)."""
    seen: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(b"")
        with contextlib.suppress(TimeoutError):
            seen[-1] = await asyncio.wait_for(reader.read(1024), 1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, seen


@pytest.mark.parametrize(
    "host",
    ["127.0.0.\uff11", "\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021"],
)
@pytest.mark.parametrize("insecure", [False, True])
def test_other_spellings_of_loopback_never_reach_it(host: str, insecure: bool) -> None:
    """Refused when sent, even in insecure mode (where 127.0.0.1 itself is allowed): no
    connection reaches the listener on 127.0.0.1."""

    async def run() -> None:
        server, port, seen = await _listen()
        egress = Egress(allow_insecure=insecure, timeout_seconds=2)
        try:
            for scheme in ("https", "http"):
                with pytest.raises(EgressRefused):
                    await egress.post(f"{scheme}://{host}:{port}/x", data=b"x", headers={})
            await asyncio.sleep(0.05)
            assert seen == []
        finally:
            await egress.close()
            server.close()
            await server.wait_closed()

    asyncio.run(run())


def test_the_connected_peer_is_checked_before_anything_is_sent() -> None:
    """Whatever the URL check missed, a connection that reached a refused address is closed
    before the request goes out (here: straight to the connector, past the URL check)."""

    async def run() -> None:
        server, port, seen = await _listen()
        connector = GuardedConnector(allow_loopback=False)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                with pytest.raises(EgressRefused, match="not public"):
                    await session.post(f"http://127.0.0.1:{port}/x", data=b"secret")
            await asyncio.sleep(0.05)
            assert all(b"secret" not in data and data == b"" for data in seen)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(run())

"""The one guard on requests this server makes to addresses its users give it (push endpoints).

A user can name any URL as their push endpoint, so without a guard they could make the server
POST to its own database port, a cloud metadata address or anything else on the private
network (server-side request forgery). The rules:

- ``https://`` only (``http://`` too when insecure mode is on: tests only);
- an IP literal must be a global address, judged when the URL is given and again when sent;
- a host name is resolved at every request by ``GuardedResolver``, which hands aiohttp only
  the global addresses it found, so the connection goes to an address that was checked (a
  name that resolves to a public address once and to 127.0.0.1 next, DNS rebinding, gets
  nowhere);
- no redirects followed, a timeout on the whole request, and at most ``max_body`` bytes of
  the answer read.

Insecure mode also allows loopback addresses (a test's push service on 127.0.0.1), never other
private ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What we read of an answer: push services answer with a few hundred bytes at most.
DEFAULT_MAX_BODY = 64 * 1024


class EgressRefused(Exception):
    """The request may not be made: the URL or the address its host resolves to is refused."""


def address_allowed(address: IpAddress, *, allow_loopback: bool = False) -> bool:
    """A global unicast address (not private, loopback, link-local, multicast, reserved,
    unspecified, shared or documentation space); loopback too when ``allow_loopback``."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address it carries. The same for
        # the NAT64 well-known prefix and 6to4, whose targets are IPv4 addresses as well.
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and address in _NAT64:
            mapped = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if mapped is not None:
            return address_allowed(mapped, allow_loopback=allow_loopback)
    if allow_loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# No top-level domain is numeric: a last label like this is an IPv4 address in another spelling.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def literal_address(host: str) -> IpAddress | None:
    """The address, if ``host`` (as in a URL, IPv6 in brackets or not) is an IP literal."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def url_problem(url: str, *, allow_insecure: bool) -> str | None:
    """Why a push endpoint (or any URL we are asked to call) is refused; None when it is not.
    Host names pass here and are judged again, after resolution, at every request."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return "is not a valid URL"
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in schemes:
        return "must be an https:// URL"
    if not host:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    address = literal_address(host)
    if address is not None:
        if not address_allowed(address, allow_loopback=allow_insecure):
            return "must be on a public address"
        return None
    name = host.rstrip(".")
    if not allow_insecure and (name == "localhost" or name.endswith((".localhost", ".local"))):
        return "must be on a public address"
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        # 2130706433 or 0x7f.1: no DNS name, but what resolvers read as an IPv4 address.
        return "must be a host name or an IP address in its usual form"
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses we may connect to. aiohttp connects to
    exactly what this returns, so what was checked is what is reached."""

    def __init__(self, *, allow_loopback: bool = False) -> None:
        self._inner = DefaultResolver()
        self.allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [
            r
            for r in found
            if address_allowed(ipaddress.ip_address(r["host"]), allow_loopback=self.allow_loopback)
        ]
        if not allowed:
            shown = ", ".join(sorted({r["host"] for r in found}))
            raise EgressRefused(f"{host} resolves to an address that is not public ({shown})")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Egress:
    """One aiohttp session for outbound requests to user-given URLs, made on the event loop
    that first uses it (the worker's) and closed with ``close()``."""

    def __init__(
        self,
        *,
        allow_insecure: bool = False,
        timeout_seconds: float = 10.0,
        max_body: int = DEFAULT_MAX_BODY,
        user_agent: str = "jobchat",
    ) -> None:
        self.allow_insecure = allow_insecure
        self.timeout_seconds = timeout_seconds
        self.max_body = max_body
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(allow_loopback=self.allow_insecure),
                limit=100,
                use_dns_cache=False,  # resolved (and judged) again for every new connection
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                trust_env=False,  # no proxy from the environment: we connect where we checked
                headers={"User-Agent": self.user_agent},
            )
            self._loop = loop
        return self._session

    async def post(self, url: str, *, data: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``data`` to ``url``; EgressRefused when the URL or its address is refused,
        aiohttp.ClientError or TimeoutError when the other side cannot be reached in time."""
        problem = url_problem(url, allow_insecure=self.allow_insecure)
        if problem is not None:
            raise EgressRefused(f"the URL {problem}")
        try:
            async with self._client().post(
                url, data=data, headers=dict(headers), allow_redirects=False
            ) as response:
                body = await response.content.read(self.max_body)
                return Answer(response.status, dict(response.headers), body)
        except aiohttp.ClientConnectorError as exc:
            # aiohttp wraps what the resolver raised; say it was refused, not unreachable.
            cause: Any = exc.__cause__ or exc.__context__
            if isinstance(cause, EgressRefused):
                raise cause from None
            raise

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

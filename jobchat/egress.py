"""The one guard on requests this server makes to addresses its users give it (push endpoints).

A user can name any URL as their push endpoint, so without a guard they could make the server
POST to its own database port, a cloud metadata address or anything else on the private
network (server-side request forgery). The rules:

- ``https://`` only (``http://`` too when insecure mode is on: tests only);
- the host is judged as aiohttp will connect to it (yarl's normalised host): a host that is
  not plain ASCII, or that yarl would read differently from how it is written, is refused
  (yarl reads 127.0.0.1 in full-width digits, or with ideographic full stops, as 127.0.0.1);
- an IP literal must be a global address outside IANA's special-purpose blocks, judged when
  the URL is given and again when sent;
- a host name is resolved at every request by ``GuardedResolver``, which hands aiohttp only
  the global addresses it found, so the connection goes to an address that was checked (a
  name that resolves to a public address once and to 127.0.0.1 next, DNS rebinding, gets
  nowhere);
- the address the connection actually reached (the socket's peer) is judged once more before
  anything is sent on it;
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
from yarl import URL

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What we read of an answer: push services answer with a few hundred bytes at most.
DEFAULT_MAX_BODY = 64 * 1024


class EgressRefused(Exception):
    """The request may not be made: the URL or the address its host resolves to is refused."""


def address_allowed(address: IpAddress, *, allow_loopback: bool = False) -> bool:
    """A global unicast address (not private, loopback, link-local, site-local, multicast,
    reserved, unspecified, shared or documentation space); loopback too when
    ``allow_loopback``."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False  # a network's own translator: where it leads is not ours to know
        # ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address it carries. The same for
        # the NAT64 well-known prefix, 6to4 and the old IPv4-compatible ::10.0.0.1 (some
        # stacks still route it to the IPv4 address), whose targets are IPv4 addresses too.
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and (
            address in _NAT64 or (address in _IPV4_COMPATIBLE and address not in _IPV6_SPECIAL)
        ):
            mapped = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if mapped is not None:
            return address_allowed(mapped, allow_loopback=allow_loopback)
        if address.is_site_local:
            return False  # fec0::/10: deprecated, but still private where it is used
    if allow_loopback and address.is_loopback:
        return True
    if any(address in network for network in _SPECIAL_PURPOSE):
        return False
    # Python 3.11's is_global misses some of these (reserved space among them).
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
    )


# IANA's special-purpose registries (IPv4 and IPv6), whole blocks, beside is_global: Python
# 3.11 calls some of them global (all of 192.0.0.0/24 but two addresses, among them Oracle
# Cloud's metadata address 192.0.0.192; the AS112 and AMT blocks; 3fff::/20). None of them
# is where an ATS receives webhooks or a browser vendor push messages. IPv4-mapped, NAT64
# and 6to4 addresses are judged by the IPv4 address they carry, above.
_SPECIAL_PURPOSE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments (192.0.0.192: Oracle Cloud metadata)
        "192.0.2.0/24",
        "192.31.196.0/24",  # AS112-v4
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "192.175.48.0/24",  # AS112 direct delegation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments (Teredo, benchmarking, AMT, ORCHID...)
        "2001:db8::/32",
        "2620:4f:8000::/48",  # AS112 direct delegation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",
        "fe80::/10",
    )
)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# ::a.b.c.d; :: itself and ::1 are judged as they are (unspecified, loopback).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV6_SPECIAL = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))
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
    # Judge the host that will be connected to: aiohttp takes it from yarl, which maps other
    # spellings (full-width digits, an ideographic full stop for ".") to ASCII, so such a
    # spelling of 127.0.0.1 would reach it as a literal the resolver never sees. Only a host
    # that reads the same both ways passes.
    if not host.isascii():
        return "must be an ASCII host name (an international one in its xn-- form)"
    try:
        connected = URL(url).raw_host  # what aiohttp resolves or connects to
    except (ValueError, UnicodeError):
        return "is not a valid URL"
    address = literal_address(host)
    if connected is None or (
        connected.lower() != host.lower()
        # yarl writes IPv6 in its short form: the same address, however spelled, is fine.
        and (address is None or literal_address(connected) != address)
    ):
        return "must be a host name or an IP address in its usual form"
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


def peer_problem(peer: object, *, allow_loopback: bool) -> str | None:
    """Why a connected socket's peer (``transport.get_extra_info("peername")``) is refused."""
    try:
        address = ipaddress.ip_address(peer[0])  # type: ignore[index]
    except (TypeError, IndexError, ValueError):
        return f"the connection's peer address is unknown ({peer!r})"
    if not address_allowed(address, allow_loopback=allow_loopback):
        return f"the connection reached an address that is not public ({address})"
    return None


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that checks the address each new connection actually reached before a
    byte of the request goes out: whatever the URL and resolver checks missed (an IP literal
    aiohttp parsed differently from us), the socket's peer is the truth."""

    def __init__(self, *, allow_loopback: bool = False, **kwargs: Any) -> None:
        super().__init__(resolver=GuardedResolver(allow_loopback=allow_loopback), **kwargs)
        self.allow_loopback = allow_loopback

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        protocol = await super()._create_connection(req, traces, timeout)
        transport = protocol.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        problem = peer_problem(peer, allow_loopback=self.allow_loopback)
        if problem is not None:
            protocol.close()
            raise EgressRefused(problem)
        return protocol


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
            connector = GuardedConnector(
                allow_loopback=self.allow_insecure,
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

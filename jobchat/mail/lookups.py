"""The DNS lookups of the email authenticity checks (DKIM keys, SPF and DMARC records): one
resolver, made from the settings, used by all three.

``JOBCHAT_DNS_SERVER`` names the server to ask (the tests point it at a DNS server of their own
on loopback); unset, the system's resolvers. Every lookup has a short timeout
(``JOBCHAT_DNS_TIMEOUT_SECONDS``): a name that does not exist is an answer (no record), a
server that does not answer is :class:`DnsUnavailable` (a temporary error: the mail is tried
again later, never judged on a guess). Lookups block: they run in the inbound worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from jobchat.config import Settings
from jobchat.netaddr import dns_server_address


class DnsUnavailable(Exception):
    """The DNS gave no answer in time (timeout, SERVFAIL): try again later."""


@dataclass
class Resolver:
    server: tuple[str, int] | None  # None: the system's resolvers
    timeout: float
    _resolver: dns.resolver.Resolver | None = field(default=None, init=False, repr=False)

    def _configured(self) -> dns.resolver.Resolver:
        """dnspython's resolver, made on first use: the system's configuration is read then
        (a machine without one fails its lookups, not its start)."""
        if self._resolver is None:
            if self.server is None:
                try:
                    resolver = dns.resolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    raise DnsUnavailable("no DNS server configured on this machine") from None
            else:
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = [self.server[0]]
                resolver.port = self.server[1]
            resolver.lifetime = self.timeout
            resolver.timeout = self.timeout
            resolver.cache = None  # records change (a key rotated); mail is not that many
            self._resolver = resolver
        return self._resolver

    @classmethod
    def of(cls, settings: Settings) -> Resolver:
        server = dns_server_address(settings.dns_server) if settings.dns_server else None
        return cls(server=server, timeout=settings.dns_timeout_seconds)

    def _answers(self, name: str, rdtype: str) -> Iterator[Any]:
        try:
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, UnicodeError):
            return  # (a domain from a mail header) no such name can exist
        try:
            answer = self._configured().resolve(
                qname, rdtype, raise_on_no_answer=False, search=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
            return
        except dns.exception.DNSException as exc:  # a timeout, SERVFAIL, no server answering
            raise DnsUnavailable(f"DNS {rdtype} {name}: {exc.__class__.__name__}") from None
        yield from answer.rrset or ()

    def txt(self, name: str) -> list[bytes]:
        """The TXT records at ``name``, each one's strings joined; [] when there are none."""
        return [b"".join(r.strings) for r in self._answers(name, "TXT")]

    def for_spf(self, name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
        """A lookup in the shape pyspf's ``DNSLookup`` returns: ((name, type), value) pairs."""
        found: list[tuple[tuple[str, str], Any]] = []
        if qtype not in ("A", "AAAA", "MX", "PTR", "TXT", "SPF"):
            return found
        for rdata in self._answers(name, qtype):
            if qtype in ("A", "AAAA"):
                value: Any = rdata.address
            elif qtype == "MX":
                value = (rdata.preference, rdata.exchange)
            elif qtype == "PTR":
                value = rdata.target.to_text(True)
            else:
                value = rdata.strings
            found.append(((name, qtype), value))
        return found

"""A DNS server on loopback for the email authenticity tests (dnslib's server, speaking real
DNS over UDP): the DKIM keys, SPF and DMARC records a test publishes, and names that get no
answer at all (a DNS server that is down, for the timeout tests). jobchat is pointed at it with
JOBCHAT_DNS_SERVER; nothing leaves the machine.

Also: DKIM keys made for a test, and mail signed with them by dkimpy (the peer's own library).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import DNSLogger, DNSServer


@dataclass
class Zone:
    """What the stand-in DNS server answers: records by (name, type); a name with no record of
    any type is NXDOMAIN; a name in ``silent`` gets no answer."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, rtype: str, value: str) -> None:
        with self.lock:
            self.records.setdefault((name.lower().rstrip("."), rtype), []).append(value)

    def txt(self, name: str, value: str) -> None:
        self.add(name, "TXT", value)

    def dmarc(self, domain: str, record: str) -> None:
        self.txt(f"_dmarc.{domain}", record)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        rtype = QTYPE[request.q.qtype]
        with self.lock:
            self.asked.append((name, rtype))
            if name in self.silent:
                raise DNSError("silent")  # dnslib's handler then sends nothing: a timeout
            values = list(self.records.get((name, rtype), []))
            known = any(n == name for n, _ in self.records)
        reply = request.reply()
        for value in values:
            if rtype == "TXT":
                # A long TXT value is several strings of at most 255 bytes, as DNS stores it.
                chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
            elif rtype == "A":
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(value), ttl=60))
        if not values and not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@dataclass
class DnsServer:
    zone: Zone
    server: DNSServer

    @property
    def address(self) -> str:
        """host:port, for JOBCHAT_DNS_SERVER."""
        host, port = self.server.server.server_address[:2]
        return f"{host}:{port}"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1 (a free UDP port) answering from a Zone the test fills."""
    zone = Zone()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
    server = DNSServer(zone, address="127.0.0.1", port=0, logger=quiet)
    server.start_thread()
    yield DnsServer(zone, server)
    server.stop()
    server.server.server_close()


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_pem: bytes
    public_record: str  # the TXT record at <selector>._domainkey.<domain>

    @classmethod
    def make(cls, domain: str, selector: str = "s1") -> DkimKey:
        # 1024 bits, dkimpy's minimum: the key record fits a plain UDP answer.
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = f"v=DKIM1; k=rsa; p={base64.b64encode(public_der).decode()}"
        return cls(domain, selector, private_pem, record)

    def publish(self, zone: Zone) -> DkimKey:
        zone.txt(f"{self.selector}._domainkey.{self.domain}", self.public_record)
        return self

    def sign(self, raw: bytes) -> bytes:
        """``raw`` with a DKIM-Signature header on top, as the sender's server adds it."""
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        signature: bytes = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.private_pem,
            include_headers=[b"from", b"to", b"subject", b"message-id", b"date"],
        )
        return signature + raw

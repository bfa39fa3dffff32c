"""Is an inbound mail from whom its From: says? The DMARC result of each mail, found the way
its arrival allows (issue 19; RFC 7489, RFC 8601):

- Relayed by a server we trust (the inbound webhook, which its secret authenticates; an SMTP
  peer in ``JOBCHAT_MAIL_TRUSTED_RELAYS``): that server received it from the internet and wrote
  its verdict in an ``Authentication-Results`` header. We read the TOPMOST one whose authserv-id
  is ``JOBCHAT_MAIL_AUTHSERV_ID``; every other one (another authserv-id, or lower down) may
  have been written by the sender, and is ignored (RFC 8601 §5, §7.1). Without an authserv-id
  configured, the topmost header of all is read: a relay prepends its own, and a header the
  sender forged there can only say ``fail`` about their own mail (only ``fail`` changes what
  happens: a forged ``pass`` gets no more than no result would).
- Straight from the internet to our SMTP listener: we are the receiving server, and check it
  here — DKIM signatures (dkimpy), SPF of the peer's address for the envelope sender (pyspf),
  then DMARC alignment with the From: domain (jobchat.mail.dmarc).

Decisions: ``fail`` refuses the mail (recorded, never posted). ``none`` (the domain publishes
no DMARC policy) lets it through: most domains have none, and the reply address and the
member's own address still have to match. ``temperror`` (no DNS answer in time) checked here
makes the SMTP listener answer 451, so the sending server tries again later; reported by a
relay it lets the mail through (the relay has already taken it and would not send it again).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import authres
import dkim
import spf

from jobchat.config import Settings
from jobchat.mail.dmarc import Result, evaluate, policy_of
from jobchat.mail.lookups import DnsUnavailable, Resolver
from jobchat.netaddr import relay_networks

log = logging.getLogger("jobchat.mail")
# dkimpy logs each signature that does not verify, at ERROR: under a name of our own, for an
# operator to quieten or read.
_dkim_log = logging.getLogger("jobchat.mail.dkim")

MAX_SIGNATURES = 5  # DKIM signatures checked per mail: each costs a lookup and a hash


@dataclass(frozen=True)
class Arrival:
    """How a mail reached us."""

    via_relay: bool  # handed over by a server we trust (the webhook, a trusted SMTP relay)
    peer: str | None = None  # the SMTP client's address
    helo: str | None = None
    envelope_from: str | None = None


@dataclass(frozen=True)
class Verdict:
    result: Result
    reason: str
    checked_here: bool = False  # we asked the DNS ourselves (not a relay's say-so)

    @property
    def refused(self) -> bool:
        return self.result is Result.fail

    @property
    def try_later(self) -> bool:
        """A mail we could not judge yet, the sending server still holding it: answer 451."""
        return self.result is Result.temperror and self.checked_here


_RELAYED = {"pass": Result.passed, "fail": Result.fail, "temperror": Result.temperror}
NOT_CHECKED = Verdict(Result.none, "not checked (JOBCHAT_MAIL_AUTHENTICITY=off)")


class Authenticity:
    def __init__(self, settings: Settings, resolver: Resolver | None = None) -> None:
        self.enforce = settings.mail_authenticity == "enforce"
        self.authserv_id = (settings.mail_authserv_id or "").strip().lower() or None
        self.relays = relay_networks(settings.mail_trusted_relays)
        self.resolver = resolver or Resolver.of(settings)
        self.timeout = settings.dns_timeout_seconds

    def over_smtp(self, peer: str | None, helo: str | None, envelope_from: str | None) -> Arrival:
        address = _address(peer)
        return Arrival(
            via_relay=address is not None and any(address in n for n in self.relays),
            peer=str(address) if address is not None else None,
            helo=helo,
            envelope_from=envelope_from,
        )

    def check(self, raw: bytes, message: EmailMessage, arrival: Arrival) -> Verdict:
        """The mail's DMARC verdict. Blocking (DNS): call it from a worker thread."""
        if not self.enforce:
            return NOT_CHECKED
        from_domain = _from_domain(message)
        if from_domain is None:
            # No single From: address: nothing to align with (and no member sends that way).
            return Verdict(Result.none, "no single From: domain")
        if arrival.via_relay:
            return self._relay_says(message)
        try:
            return self._check_here(raw, message, arrival, from_domain)
        except DnsUnavailable as exc:
            return Verdict(Result.temperror, str(exc), checked_here=True)

    # --- what the trusted relay found -----------------------------------------------------

    def _relay_says(self, message: EmailMessage) -> Verdict:
        for value in _all(message, "Authentication-Results"):
            try:
                header = authres.AuthenticationResultsHeader.parse(
                    f"Authentication-Results: {value}"
                )
            except Exception:  # authres raises several kinds
                # Unreadable. If it is our relay's, stop here: one further down is not theirs.
                if self.authserv_id is None or value.split(";")[0].lower().split()[:1] == [
                    self.authserv_id
                ]:
                    return Verdict(Result.none, f"unreadable Authentication-Results ({value[:80]})")
                continue  # someone else's header we cannot read: not ours anyway
            server = str(header.authserv_id).lower()
            if self.authserv_id is not None and server != self.authserv_id:
                continue  # another server's, or written by the sender: not ours to believe
            # The topmost of our relay's headers: the one it added on receipt.
            for found in header.results:
                if str(found.method).lower() == "dmarc":
                    said = str(found.result).lower()
                    # permerror (a broken record), bestguesspass and the like: no result.
                    result = _RELAYED.get(said, Result.none)
                    return Verdict(result, f"{server} says dmarc={said}")
            return Verdict(Result.none, f"{server} gave no DMARC result")
        return Verdict(
            Result.none, f"no Authentication-Results from {self.authserv_id or 'the relay'}"
        )

    # --- checked here ----------------------------------------------------------------------

    def _check_here(
        self, raw: bytes, message: EmailMessage, arrival: Arrival, from_domain: str
    ) -> Verdict:
        policy = policy_of(self.resolver, from_domain)
        if policy is None:
            # No policy: DKIM and SPF would decide nothing, so they are not looked up.
            return Verdict(Result.none, f"no DMARC record for {from_domain}", checked_here=True)
        unknown: list[str] = []
        dkim_domains = self._dkim_passes(raw, message, unknown)
        spf_domain = self._spf_pass(arrival, unknown)
        evaluation = evaluate(
            policy, from_domain, dkim_domains=dkim_domains, spf_domain=spf_domain, unknown=unknown
        )
        return Verdict(evaluation.result, evaluation.reason, checked_here=True)

    def _dkim_passes(self, raw: bytes, message: EmailMessage, unknown: list[str]) -> list[str]:
        """The d= domains of the DKIM signatures that verify; a key the DNS gave no answer
        for is added to ``unknown``."""

        def key_record(name: bytes | str, timeout: float = 5) -> bytes | None:
            # dkimpy's ``dnsfunc``. It takes a timeout for a failed signature (and logs it), so
            # the lookup itself notes that the answer is unknown, not "no".
            text = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
            try:
                records = self.resolver.txt(text)
            except DnsUnavailable as exc:
                unknown.append(f"DKIM key {text}")
                raise dkim.DnsTimeoutError(str(exc)) from None
            return records[0] if records else None

        passed: list[str] = []
        count = min(len(_all(message, "DKIM-Signature")), MAX_SIGNATURES)
        for index in range(count):
            verifier = dkim.DKIM(raw, logger=_dkim_log, timeout=self.timeout)
            try:
                ok = verifier.verify(idx=index, dnsfunc=key_record)
            except Exception as exc:  # dkimpy raises more than DKIMException on junk
                _dkim_log.info("DKIM signature %s not verified: %r", index, exc)
                continue  # a broken signature or key: not a pass
            if ok and verifier.domain:
                passed.append(_text(verifier.domain).lower())
        return passed

    def _spf_pass(self, arrival: Arrival, unknown: list[str]) -> str | None:
        """The domain SPF passed for (the envelope sender's, or the HELO name's for a null
        sender), or None."""
        if not arrival.peer:
            return None
        sender = arrival.envelope_from or ""
        helo = arrival.helo or ""
        domain = sender.rpartition("@")[2] if sender else helo
        if not domain:
            return None
        try:
            with _spf_through(self.resolver):
                result, _ = spf.check2(i=arrival.peer, s=sender, h=helo, timeout=self.timeout)
        except Exception:  # malformed input pyspf did not expect: no pass
            log.info("SPF not checked for %s from %s", domain, arrival.peer, exc_info=True)
            return None
        if result == "temperror":
            unknown.append(f"SPF of {domain}")
        return domain.lower().rstrip(".") if result == "pass" else None


def _address(peer: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address; an IPv4 client of a dual-stack listener (::ffff:1.2.3.4) as IPv4."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _all(message: EmailMessage, name: str) -> list[str]:
    try:
        return [str(v) for v in message.get_all(name) or []]
    except Exception:  # a malformed header is not worth failing a mail over
        return []


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")


def _from_domain(message: EmailMessage) -> str | None:
    addresses = [a for _, a in getaddresses(_all(message, "From")) if "@" in a]
    if len(addresses) != 1:
        return None
    domain = addresses[0].rpartition("@")[2].strip().rstrip(".").lower()
    return domain or None


# pyspf asks the DNS through its module-level ``DNSLookup``; it is pointed (once, here) at the
# resolver of the check in progress on this thread, or the library's own lookup otherwise.
_spf_resolver: ContextVar[Resolver | None] = ContextVar("spf_resolver", default=None)
_library_lookup = spf.DNSLookup


def _spf_lookup(name: str, qtype: str, strict: object = True, timeout: float = 30) -> Any:
    resolver = _spf_resolver.get()
    if resolver is None:
        return _library_lookup(name, qtype, strict, timeout)
    try:
        return resolver.for_spf(name, qtype)
    except DnsUnavailable as exc:
        raise spf.TempError(str(exc)) from None


spf.DNSLookup = _spf_lookup


@contextmanager
def _spf_through(resolver: Resolver) -> Iterator[None]:
    token = _spf_resolver.set(resolver)
    try:
        yield
    finally:
        _spf_resolver.reset(token)

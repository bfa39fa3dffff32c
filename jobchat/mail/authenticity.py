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

The From: header is read once (``author_of``), for this check and for the member check that
follows (jobchat.mail.inbound): a mail without exactly one From: address has no author to
check, and is never posted.

Decisions: ``fail`` refuses the mail (recorded, never posted) when the domain's policy asks
receivers to act on failures (``p=quarantine``, ``p=reject``); under ``p=none`` (or a
``pct=0`` that lowers quarantine to none) it is let through, noted, since the domain asks
receivers not to act on failures. A relay's ``fail`` names the policy in its comment
(``dmarc=fail (p=none dis=none)``); without one it refuses. Checked here, a mail without
exactly one From: address fails (RFC 7489 §6.6.1: no author domain to check). ``none`` (the
domain publishes no DMARC policy) lets it through: most domains have none, and the reply
address and the member's own address still have to match. ``temperror`` (no DNS answer in
time) checked here makes the SMTP listener answer 451, so the sending server tries again
later; reported by a relay it lets the mail through (the relay has already taken it and would
not send it again).
"""

from __future__ import annotations

import ipaddress
import logging
import re
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
class Author:
    """Who the From: header says wrote the mail: its one address, or why there is none."""

    address: str | None  # lower-cased; None unless exactly one From: with exactly one address
    problem: str | None = None

    @property
    def domain(self) -> str | None:
        domain = (self.address or "").rpartition("@")[2].strip().rstrip(".")
        return domain or None


def author_of(message: EmailMessage) -> Author:
    """The From: address, read for the DMARC check and the member check alike. RFC 5322 allows
    one From: header; several, or several addresses in it, would let the two checks read
    different addresses (the DMARC domain of one, the member's address of another)."""
    values = _all(message, "From")
    if len(values) != 1:
        return Author(None, f"{len(values)} From: headers" if values else "no From: header")
    addresses = [a for _, a in getaddresses(values) if a]
    if len(addresses) != 1:
        return Author(None, f"{len(addresses)} addresses in From:")
    address = addresses[0].strip().lower()
    if "@" not in address or not address.rpartition("@")[2].strip(" ."):
        return Author(None, "a From: address without a domain")
    return Author(address)


@dataclass(frozen=True)
class Verdict:
    result: Result
    reason: str
    checked_here: bool = False  # we asked the DNS ourselves (not a relay's say-so)
    # What the From: domain asks done with a failing mail ("none", "quarantine", "reject"):
    # None when not known, which for a fail means refusing it.
    policy: str | None = None

    @property
    def refused(self) -> bool:
        return self.result is Result.fail and self.policy != "none"

    @property
    def failed_under_none(self) -> bool:
        """A fail the domain's policy asks receivers not to act on: let through, noted."""
        return self.result is Result.fail and self.policy == "none"

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

    def check(self, raw: bytes, message: EmailMessage, arrival: Arrival, author: Author) -> Verdict:
        """The mail's DMARC verdict; ``author``: its From:, as ``author_of`` read it. Blocking
        (DNS): call it from a worker thread."""
        if not self.enforce:
            return NOT_CHECKED
        if arrival.via_relay:
            # The relay's word first: nothing about the From: header may skip its fail.
            return self._relay_says(message)
        if author.domain is None:
            # RFC 7489 §6.6.1: without one author domain there is nothing to check; such mail
            # is rejected (a sender trying two From: headers is after exactly that).
            reason = f"{author.problem}: no single author domain to check"
            return Verdict(Result.fail, reason, checked_here=True)
        try:
            return self._check_here(raw, message, arrival, author.domain)
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
                    policy = _policy_in_comment(value)
                    named = f" (p={policy})" if policy else ""
                    return Verdict(result, f"{server} says dmarc={said}{named}", policy=policy)
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
        return Verdict(
            evaluation.result, evaluation.reason, checked_here=True, policy=policy.disposition
        )

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


_POLICY_TAG = re.compile(r"(?<![a-z])(s?p)\s*=\s*([a-z]+)", re.IGNORECASE)


def _policy_in_comment(value: str) -> str | None:
    """The DMARC policy a relay names in the comment of its dmarc result, as OpenDMARC, Gmail,
    Yahoo and Fastmail write it: ``dmarc=fail (p=none dis=none)``, ``(p=NONE sp=NONE
    dis=NONE)``, ``(p=none,d=none)``. authres drops comments, so the header is split here:
    at the ``;`` outside comments and quoted strings, then the comments of the dmarc result.
    ``none`` only when every p= and sp= named is none (sp= may be the one that applies);
    otherwise the strictest named, or None when none is named (a fail then refuses)."""
    for text, comments in _resinfos(value)[1:]:
        if text.split("=", 1)[0].split("/", 1)[0].strip().lower() != "dmarc":
            continue
        named = {m.group(2).lower() for c in comments for m in _POLICY_TAG.finditer(c)}
        for policy in ("reject", "quarantine", "none"):
            if policy in named:
                return policy
        return None
    return None


def _resinfos(value: str) -> list[tuple[str, list[str]]]:
    """The parts of an Authentication-Results value between top-level ``;``: each part's text
    without its comments, and its top-level comments (RFC 5322 comments nest, and take
    quoted pairs; a quoted string holds no comment)."""
    parts: list[tuple[str, list[str]]] = []
    text, comments, comment = "", [], ""
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                comments.append(comment)
                comment = ""
                continue
        elif char == '"':
            quoted = not quoted
        elif char == "(" and not quoted:
            depth = 1
            continue
        elif char == ";" and not quoted:
            parts.append((text, comments))
            text, comments = "", []
            continue
        if depth:
            comment += char
        else:
            text += char
    parts.append((text, comments + ([comment] if depth else [])))
    return parts


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

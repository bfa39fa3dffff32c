"""DMARC (RFC 7489): does the From: domain stand behind this mail?

The domain's policy record is ``_dmarc.<From domain>``, else ``_dmarc.<organisational domain>``
(§6.6.3; the organisational domain is read from the Public Suffix List that the
``publicsuffixlist`` package ships: no download at run time). The result is ``pass`` when a DKIM
signature that verified, or the domain SPF passed for, is aligned with the From: domain —
relaxed (the same organisational domain) or strict (the same name), as the record's ``adkim``
and ``aspf`` say — ``fail`` when neither is, ``none`` when the domain publishes no policy.
The result does not depend on the policy (``p=``): it is named in the reason, and what a
``fail`` means is the policy's ``disposition`` (``none`` asks receivers not to act on it).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from jobchat.mail.lookups import Resolver


class Result(enum.StrEnum):
    passed = "pass"
    fail = "fail"
    none = "none"  # no DMARC record: the domain asks nothing
    temperror = "temperror"  # a lookup had no answer: not known yet


@dataclass(frozen=True)
class Policy:
    domain: str  # where the record was found
    p: str
    adkim: str  # "r" or "s"
    aspf: str
    pct: int = 100  # the share of failing mail the domain asks to have the policy applied to

    @property
    def disposition(self) -> str:
        """What the domain asks done with a mail that fails. ``pct=0`` selects no mail, and a
        mail not selected gets the next lower policy (RFC 7489 §6.6.4): reject -> quarantine,
        quarantine -> none. Any other ``pct`` is applied to every mail: a reply is not sampled
        at random, and the domain has asked for enforcement."""
        if self.pct == 0:
            return {"reject": "quarantine", "quarantine": "none"}.get(self.p, self.p)
        return self.p


@dataclass(frozen=True)
class Evaluation:
    result: Result
    reason: str


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped in the package; parsed once


def organisational_domain(domain: str) -> str:
    """``mail.example.co.uk`` -> ``example.co.uk``; a public suffix itself stays as it is."""
    name = domain.strip().rstrip(".").lower()
    return _suffixes().privatesuffix(name) or name


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    identifier, from_domain = identifier.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if mode == "s":
        return identifier == from_domain
    return organisational_domain(identifier) == organisational_domain(from_domain)


def _parse(record: bytes) -> dict[str, str] | None:
    """The tags of a DMARC record, or None when it is not one (it must start ``v=DMARC1``)."""
    text = record.decode("ascii", "replace")
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            tags.setdefault(name.strip().lower(), value.strip())
    if text.split(";")[0].replace(" ", "") != "v=DMARC1":
        return None
    return tags


def _record_at(resolver: Resolver, domain: str) -> dict[str, str] | None:
    records = [t for t in map(_parse, resolver.txt(f"_dmarc.{domain}")) if t is not None]
    # §6.6.3: more than one DMARC record is no record.
    return records[0] if len(records) == 1 else None


def policy_of(resolver: Resolver, from_domain: str) -> Policy | None:
    """The DMARC policy that applies to ``from_domain``; raises DnsUnavailable."""
    domain = from_domain.rstrip(".").lower()
    tags, found_at = _record_at(resolver, domain), domain
    if tags is None:
        org = organisational_domain(domain)
        if org != domain:
            tags, found_at = _record_at(resolver, org), org
    if tags is None:
        return None
    p = tags.get("p", "").lower()
    if found_at != domain and tags.get("sp"):
        p = tags["sp"].lower()
    if p not in ("none", "quarantine", "reject"):
        # §6.6.3: a record without a valid p= counts as p=none when it has rua=, else as none.
        if "rua" not in tags:
            return None
        p = "none"
    return Policy(
        domain=found_at,
        p=p,
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
        pct=_pct(tags.get("pct", "")),
    )


def _pct(value: str) -> int:
    """``pct=``: an integer 0-100; anything else is ignored, giving the default 100 (§6.3)."""
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and int(value) <= 100 else 100


def evaluate(
    policy: Policy | None,
    from_domain: str,
    *,
    dkim_domains: Sequence[str],
    spf_domain: str | None,
    unknown: Sequence[str] = (),
) -> Evaluation:
    """The DMARC result of a mail whose From: domain is ``from_domain``: ``dkim_domains`` are
    the d= of the signatures that verified, ``spf_domain`` the domain SPF passed for (None when
    it did not pass), ``unknown`` what could not be checked for want of a DNS answer."""
    if policy is None:
        return Evaluation(Result.none, f"no DMARC record for {from_domain}")
    about = f"{from_domain} (p={policy.p}{'' if policy.pct == 100 else f' pct={policy.pct}'})"
    for domain in dkim_domains:
        if aligned(domain, from_domain, policy.adkim):
            return Evaluation(Result.passed, f"{about}: DKIM d={domain} aligned")
    if spf_domain is not None and aligned(spf_domain, from_domain, policy.aspf):
        return Evaluation(Result.passed, f"{about}: SPF {spf_domain} aligned")
    if unknown:
        return Evaluation(Result.temperror, f"{about}: no DNS answer for {', '.join(unknown)}")
    checked = ", ".join(
        [f"DKIM d={d}" for d in dkim_domains] + ([f"SPF {spf_domain}"] if spf_domain else [])
    )
    return Evaluation(
        Result.fail,
        f"{about}: " + (f"not aligned ({checked})" if checked else "no DKIM or SPF pass"),
    )

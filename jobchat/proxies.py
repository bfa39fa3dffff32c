"""Which reverse proxies are believed about the client: ``JOBCHAT_TRUSTED_PROXIES``.

Behind a proxy every connection comes from the proxy, and the client's own address and scheme
arrive in ``X-Forwarded-For`` / ``X-Forwarded-Proto``. Anyone can send those headers, so they
are taken only from a peer named here. uvicorn applies them (``serving.py``); this module says
what the setting means, strictly: a typo must stop start-up, not quietly trust nobody (or, as
uvicorn would, treat the word as a name that never matches).
"""

from __future__ import annotations

import ipaddress


def trusted_proxies(value: str) -> list[str]:
    """The setting as a list of addresses and networks (``10.0.0.0/8``, ``::1``), or ``["*"]``
    for every peer; empty: none. Raises ValueError naming the entry that is neither."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if entries == ["*"]:
        return entries
    trusted: list[str] = []
    for entry in entries:
        if entry == "*":
            raise ValueError("* (every peer) cannot be combined with addresses")
        try:
            if "/" in entry:
                # strict=False: 10.1.2.3/8 means the network it is in, as people write it.
                trusted.append(str(ipaddress.ip_network(entry, strict=False)))
            else:
                trusted.append(str(ipaddress.ip_address(entry)))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (write addresses and networks such "
                "as 127.0.0.1, 10.0.0.0/8, separated by commas)"
            ) from None
    return trusted

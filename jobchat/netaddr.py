"""Network addresses in the mail authenticity settings: the mail relays we believe
(``JOBCHAT_MAIL_TRUSTED_RELAYS``) and the DNS server to ask (``JOBCHAT_DNS_SERVER``). Strict, as
``jobchat.proxies`` is: a typo stops start-up instead of quietly trusting nobody (or everybody).
"""

from __future__ import annotations

import ipaddress


def relay_networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``JOBCHAT_MAIL_TRUSTED_RELAYS``: the mail relays' addresses and networks (no ``*``: a
    relay trusted whoever it is would let anyone write our authentication results)."""
    networks = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (write addresses and networks such "
                "as 127.0.0.1, 10.0.0.0/8, separated by commas)"
            ) from None
    return networks


def dns_server_address(value: str) -> tuple[str, int]:
    """``JOBCHAT_DNS_SERVER``: (address, port) of ``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or
    ``[::1]:5353``; port 53 unless given."""
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError("must be an address, or [address]:port")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError("must be an address, or address:port")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{host!r} is not an IP address (a DNS server is named by its address)"
        ) from None
    if not 1 <= port <= 65535:
        raise ValueError("the port must be 1 to 65535")
    return host, port

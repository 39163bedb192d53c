"""The client's address: what the rest of the app logs and rate-limits by.

Behind nginx every request comes from the proxy, so REMOTE_ADDR names nginx, not the person. nginx
passes the address it saw in X-Forwarded-For; that header is believed only when the request comes from
a trusted proxy (settings.TABULA_TRUSTED_PROXIES), since anyone can send it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request) -> str | None:
    """The address of the client that sent ``request``, or None when the server was not told one.

    REMOTE_ADDR, unless it is a trusted proxy: then the rightmost address of X-Forwarded-For, the one
    the proxy itself saw (addresses to its left were sent by the client and prove nothing).
    """
    return forwarded_client(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
        trusted_proxies=trusted_proxies(),
    )


def forwarded_client(*, remote_addr: str, forwarded_for: str | None, trusted_proxies: Iterable[IPNetwork]) -> str | None:
    """The client's address from a connection's peer and its X-Forwarded-For header (also for sockets' scopes)."""
    peer = parse_address(remote_addr)
    if peer is None:
        return None
    if forwarded_for and any(peer in network for network in trusted_proxies):
        forwarded = parse_address(forwarded_for.rsplit(",", 1)[-1])
        if forwarded is not None:
            return str(forwarded)
    return str(peer)


def parse_address(text: str) -> IPAddress | None:
    """An IP address, IPv4-mapped IPv6 addresses as IPv4; None for anything else."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """settings.TABULA_TRUSTED_PROXIES as networks: an address, or a network such as 10.0.0.0/24."""
    return parse_networks(tuple(settings.TABULA_TRUSTED_PROXIES))


@functools.lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TABULA_TRUSTED_PROXIES: {exc}") from None

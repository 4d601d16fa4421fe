"""The client's network address, as login throttling and rate limits see it.

Why it is built this way: ``X-Forwarded-For`` is written by whoever sends the request, so
believing it from anyone would let an attacker pick a fresh address for every guess (or
pin an innocent one). It is read only when the peer that connected to us is one of the
configured reverse proxies (``IRIS_TRUSTED_PROXIES``; none by default). Then the header is
walked from the right (the hop our proxy added) past every trusted proxy, and the first
address that is not one is the client. The web UI (the websocket's peer and headers) and
the JSON API (the request's) both call ``client_address``, so they always agree.
"""

from __future__ import annotations

import functools
import ipaddress

from iris_reflex.settings import get_settings

UNKNOWN_ADDRESS = "unknown"
ADDRESS_MAX = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _parse_networks(configured: str) -> tuple[Network, ...]:
    networks: list[Network] = []
    for item in configured.split(","):
        item = item.strip()
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return tuple(networks)


def trusted_networks() -> tuple[Network, ...]:
    """The configured proxies (``IRIS_TRUSTED_PROXIES``: addresses or CIDR networks).

    Raises:
        ValueError: an entry is not an address or a network.
    """
    return _parse_networks(get_settings().trusted_proxies)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _clean(address: str) -> str:
    return address.strip()[:ADDRESS_MAX] or UNKNOWN_ADDRESS


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """The address to count a request against.

    ``peer`` is the address of the connection's other end; ``forwarded_for`` the raw
    ``X-Forwarded-For`` header, believed only when ``peer`` is a trusted proxy.
    """
    peer = _clean(peer or "")
    networks = trusted_networks()
    if not networks or not forwarded_for or not _is_trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return _clean(hop)
    # Every hop is one of our proxies: the leftmost is as close to the client as we know.
    return _clean(hops[0]) if hops else peer

"""Which address a request comes from, believing X-Forwarded-For only from trusted proxies.

Every proxy appends the address of its own peer to X-Forwarded-For, so the entries on the
right were written by our proxies and the ones further left by whoever sent the request
to them, which may be anything a client chose to forge. Walking the header from the right
and stopping at the first address that is not one of our proxies gives the last address
that a trusted hop saw itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from osutrack.settings import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress | None:
    """The address in one X-Forwarded-For entry or REMOTE_ADDR, or None when malformed.

    Accepts a bare IPv4 or IPv6 address and the `1.2.3.4:port` / `[::1]:port` forms some
    proxies write. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket
    reports for an IPv4 peer) is the IPv4 address, so one client has one identity.
    """
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not _is_port_suffix(rest)):
            return None
        text = host
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port_suffix(":" + port):
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_port_suffix(text: str) -> bool:
    port = text[1:]
    return text.startswith(":") and port.isascii() and port.isdigit() and int(port) <= 65535


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    """True when `address` lies in one of the `trusted` networks."""
    return any(address.version == network.version and address in network for network in trusted)


def client_ip(peer: str, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: `peer` (REMOTE_ADDR) unless that peer is a trusted proxy.

    From a trusted peer, X-Forwarded-For is walked from the right, skipping trusted
    proxies, and the first other address is the client. A malformed entry met on the way
    means the chain cannot be believed past it, so the answer is then the peer itself.
    When every entry is a trusted proxy, the leftmost one is the client (e.g. a health
    check sent from inside the proxy tier). Empty entries (a doubled comma) are skipped. A
    peer that is not an IP address (a Unix socket path) is returned as it is.
    """
    peer_address = parse_address(peer)
    if peer_address is None:
        return peer
    if not forwarded_for or not is_trusted(peer_address, trusted):
        return str(peer_address)
    client = peer_address
    for entry in reversed(forwarded_for.split(",")):
        if not entry.strip():
            continue
        address = parse_address(entry)
        if address is None:
            return str(peer_address)
        client = address
        if not is_trusted(address, trusted):
            break
    return str(client)

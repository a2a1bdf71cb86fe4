"""Client address resolution: X-Forwarded-For is believed only as far as trusted proxies go."""

from __future__ import annotations

import ipaddress

import pytest

from api_shim.client_ip import client_ip, is_trusted, parse_address
from osutrack.settings import parse_networks

PROXIES = parse_networks("10.0.0.0/8, 192.0.2.7, 2001:db8:ffff::/48")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # An untrusted peer is the client, whatever it claims.
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", "10.0.0.1, 198.51.100.1", "203.0.113.9"),
        # A trusted peer without a header is the client (a request from inside).
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", " , ,", "10.0.0.1"),
        # One proxy: the address it appended.
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("192.0.2.7", "198.51.100.1", "198.51.100.1"),
        # What the client put in front of the proxy's entry is ignored.
        ("10.0.0.1", "1.1.1.1, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "10.9.9.9, 198.51.100.1", "198.51.100.1"),
        # Several trusted hops are skipped, from the right.
        ("10.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.3, 192.0.2.7", "198.51.100.1"),
        # Every entry trusted: the leftmost is the client.
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        # Malformed entries before the client is found: the peer's own view.
        ("10.0.0.1", "198.51.100.1, garbage", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, unknown, 10.0.0.2", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, 999.1.1.1", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, 1.2.3.4:99999999", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, [2001:db8::1", "10.0.0.1"),
        # ...but not after it: whatever lies left of the client is never read.
        ("10.0.0.1", "garbage, 198.51.100.1", "198.51.100.1"),
        # Whitespace and doubled commas are tolerated.
        ("10.0.0.1", "  198.51.100.1 ,, 10.0.0.2  ", "198.51.100.1"),
        # Ports some proxies write.
        ("10.0.0.1", "198.51.100.1:51234", "198.51.100.1"),
        ("10.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.1", "[2001:db8::1]", "2001:db8::1"),
        # IPv6 proxies and clients; addresses come back in canonical form.
        ("2001:db8:ffff::1", "2001:DB8:0:0::5", "2001:db8::5"),
        ("2001:db8:ffff::1", "198.51.100.1", "198.51.100.1"),
        ("2001:db8:1::1", "198.51.100.1", "2001:db8:1::1"),
        # An IPv4 peer as a dual-stack socket reports it is still that IPv4 address.
        ("::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("::ffff:203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("10.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"),
        # A peer that is no IP address (a Unix socket) is returned unchanged.
        ("", "198.51.100.1", ""),
        ("/run/api.sock", "198.51.100.1", "/run/api.sock"),
    ],
)
def test_client_ip(peer: str, forwarded_for: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded_for, PROXIES) == expected


def test_nothing_trusted_by_default() -> None:
    assert client_ip("10.0.0.1", "198.51.100.1", ()) == "10.0.0.1"
    assert client_ip("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.1", "198.51.100.1"),
        (" 198.51.100.1 ", "198.51.100.1"),
        ("198.51.100.1:80", "198.51.100.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:8080", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("", None),
        ("unknown", None),
        ("_hidden", None),
        ("198.51.100.1:", None),
        ("198.51.100.1:http", None),
        ("198.51.100.1:65536", None),
        ("198.51.100.1:\u0665", None),  # an Arabic-Indic digit
        (":80", None),
        ("[198.51.100.1]x", None),
        ("[]", None),
        ("2001:db8::1]", None),
        ("1.2.3", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (None if parsed is None else str(parsed)) == expected


def test_is_trusted_ignores_other_families() -> None:
    assert is_trusted(ipaddress.ip_address("10.1.2.3"), PROXIES)
    assert not is_trusted(ipaddress.ip_address("11.0.0.1"), PROXIES)
    assert not is_trusted(ipaddress.ip_address("::a00:1"), PROXIES)

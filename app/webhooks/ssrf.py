"""Where webhooks may go: a guard against server-side request forgery, applied twice.

At save time the URL is checked (scheme, host, port) and its name resolved; at send time it is resolved
again and every address checked, and the connection is made to the checked address (pinned) with the
name as Host header, TLS SNI and certificate hostname — so a DNS answer that changes between check and
connect (rebinding) cannot move the request to another host.

Refused: loopback, RFC 1918 private, link-local (which holds the cloud metadata address 169.254.169.254),
CGNAT 100.64.0.0/10, unspecified, multicast, broadcast and reserved ranges, documentation and benchmark
nets; in IPv6 also unique-local fc00::/7 (which holds AWS's fd00:ec2::254), link-local, site-local,
IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, Teredo, and 6to4 (2002::/16) or NAT64 (64:ff9b::/96,
64:ff9b:1::/48) addresses whose embedded IPv4 address is refused. WEBHOOKS_ALLOWED_SUBNETS lets chosen
networks through (development uses 127.0.0.0/8); plain http needs WEBHOOKS_ALLOW_HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

BLOCKED_V4 = [(ipaddress.ip_network(net), why) for net, why in (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)]
BLOCKED_V6 = [(ipaddress.ip_network(net), why) for net, why in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("::/8", "reserved"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)]
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
NAT64 = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")]


class BlockedDestination(ValueError):
    """The URL may not receive webhooks; str() says why (safe to show the tenant)."""


@dataclass(frozen=True)
class Destination:
    """A checked URL and the address to connect to."""

    scheme: str
    host: str  # the name as written (IPv6 without brackets)
    port: int
    target: str  # path and query to request
    address: str  # the checked IP address to connect to
    host_header: str


def _allowed_nets(config: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in (config.get("WEBHOOKS_ALLOWED_SUBNETS") or [])]


def address_refusal(ip: IPAddress, allowed: list | None = None) -> str | None:
    """Why this address may not receive webhooks, or None if it may."""
    if any(ip.version == net.version and ip in net for net in allowed or []):
        return None
    if ip in METADATA:
        return "cloud metadata"
    if isinstance(ip, ipaddress.IPv4Address):
        for net, why in BLOCKED_V4:
            if ip in net:
                return why
        return None
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    if ip in SIX_TO_FOUR:
        embedded = ip.sixtofour
        inner = address_refusal(embedded)  # the allowlist is for direct addresses
        return f"6to4 of {inner} {embedded}" if inner else None
    for net in NAT64:
        if ip in net:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            inner = address_refusal(embedded)  # the allowlist is for direct addresses
            return f"NAT64 of {inner} {embedded}" if inner else None
    for net, why in BLOCKED_V6:
        if ip in net:
            return why
    return None


def _resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (a seam for tests)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def parse(url: str, config: Any) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, target, host header) of an acceptable URL, else BlockedDestination."""
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() for c in url):
        raise BlockedDestination("Give an absolute URL of at most 2048 characters, without spaces.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise BlockedDestination("The URL must start with https://.")
    if scheme == "http" and not config.get("WEBHOOKS_ALLOW_HTTP"):
        raise BlockedDestination("The URL must use https:// (plain http is not allowed).")
    if parts.username is not None or parts.password is not None:
        raise BlockedDestination("The URL must not contain a user name or password.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BlockedDestination("The URL's port is not valid.") from None
    if not host:
        raise BlockedDestination("The URL has no host.")
    port = port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, target, parts.netloc.rpartition("@")[2]


def check(url: str, config: Any) -> Destination:
    """Check a URL and resolve it: every address must be allowed. Used at save time and before each send."""
    scheme, host, port, target, host_header = parse(url, config)
    allowed = _allowed_nets(config)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host.rstrip(".").lower() == "localhost" or host.rstrip(".").lower().endswith(".localhost"):
            addresses = [ipaddress.ip_address("127.0.0.1")]
        else:
            try:
                addresses = [ipaddress.ip_address(a.split("%")[0]) for a in _resolve(host, port)]
            except (OSError, UnicodeError):
                raise BlockedDestination(f"The host {host} does not resolve.") from None
            if not addresses:
                raise BlockedDestination(f"The host {host} does not resolve.") from None
    for ip in addresses:
        why = address_refusal(ip, allowed)
        if why:
            raise BlockedDestination(f"The URL points to a {why} address ({ip}), which cannot receive webhooks.")
    return Destination(scheme, host, port, target, str(addresses[0]), host_header)

"""Keep outbound webhooks off private networks (SSRF protection).

A flow author controls webhook URLs, so by default a URL may only reach public addresses. Refused:

* schemes other than http and https, and URLs with credentials (``user:pass@host``);
* ``localhost`` and ``*.localhost`` by name;
* hosts where ANY resolved address is loopback, private (RFC 1918), carrier-grade NAT (100.64/10),
  link-local (including the 169.254.169.254 cloud metadata endpoint), unspecified, multicast,
  broadcast, documentation/benchmarking or otherwise reserved, IPv6 unique-local (fc00::/7),
  link-local (fe80::/10) or site-local, and IPv6 forms that embed such an IPv4 address
  (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, IPv4-compatible).

``allow_private=True`` lifts the address rules (for receivers on the same host or LAN) except for
cloud metadata endpoints; a host listed in ``allowed_hosts`` (exact name or IP) skips every address
rule, metadata included. Scheme and credential rules always apply.

DNS rebinding: a name can resolve to a public address when checked and to a private one a moment
later when the HTTP client resolves it again. Checking alone cannot prevent that, so
:func:`resolve_destination` returns the addresses it checked and the webhook channel connects to one
of those addresses directly (keeping the original Host header and TLS server name), never resolving
the name a second time. Hosts in ``allowed_hosts`` are trusted and not pinned.

Resolution failures raise :class:`DeliveryError` (transient: DNS may recover); refusals raise
:class:`BlockedDestinationError` (permanent until the configuration changes).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from storeflow.errors import BlockedDestinationError, DeliveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Called as resolver(host, port); returns getaddrinfo-style tuples (family, type, proto, canon, sockaddr).
Resolver = Callable[[str, int], Iterable[tuple[Any, ...]]]

HINT = (
    "if this destination is intended, set STOREFLOW_WEBHOOK_ALLOW_PRIVATE=true "
    "or add the host to STOREFLOW_WEBHOOK_ALLOWED_HOSTS"
)

# Blocked even with allow_private=True (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba Cloud).
_METADATA: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

_BLOCKED_V4 = [
    (ipaddress.ip_network(net), why)
    for net, why in [
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private (RFC 1918) address"),
        ("100.64.0.0/10", "a carrier-grade NAT (RFC 6598) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private (RFC 1918) address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.0.2.0/24", "a documentation (TEST-NET-1) address"),
        ("192.88.99.0/24", "a reserved (6to4 relay anycast) address"),
        ("192.168.0.0/16", "a private (RFC 1918) address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation (TEST-NET-2) address"),
        ("203.0.113.0/24", "a documentation (TEST-NET-3) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    ]
]

_BLOCKED_V6 = [
    (ipaddress.ip_network(net), why)
    for net, why in [
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "a deprecated IPv4-compatible address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo tunnel address"),
        ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a unique local (ULA) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a deprecated site-local address"),
        ("ff00::/8", "a multicast address"),
    ]
]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Letters, digits, hyphen and underscore (seen in real DNS names) in dot-separated labels (IDNA-encoded).
_HOSTNAME = re.compile(
    r"(?=.{1,254}\Z)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?"
)


@dataclass(frozen=True)
class Destination:
    """A checked destination. ``addresses`` are the vetted IPs to connect to (empty: not pinned)."""

    url: httpx.URL
    scheme: str
    host: str  # ASCII (IDNA) host, lower-case, no brackets
    port: int
    addresses: tuple[str, ...]

    @property
    def host_is_ip(self) -> bool:
        return _parse_ip(self.host) is not None

    @property
    def netloc(self) -> str:
        """``host[:port]`` as it belongs in a Host header (no credentials, no path)."""
        return self.url.netloc.decode("ascii")


def check_destination(
    url: str,
    *,
    allow_private: bool,
    allowed_hosts: Collection[str] = (),
    resolver: Resolver = socket.getaddrinfo,
) -> None:
    """Raise :class:`BlockedDestinationError` if ``url`` may not be called (see the module docstring)."""
    resolve_destination(url, allow_private=allow_private, allowed_hosts=allowed_hosts, resolver=resolver)


def resolve_destination(
    url: str,
    *,
    allow_private: bool,
    allowed_hosts: Collection[str] = (),
    resolver: Resolver = socket.getaddrinfo,
) -> Destination:
    """Check ``url`` and return the addresses it was checked against, to connect to exactly those."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BlockedDestinationError(f"invalid URL: {exc}") from exc
    scheme = parsed.scheme
    if scheme not in ("http", "https"):
        raise BlockedDestinationError(f"URL scheme {scheme or '(none)'!r} is not allowed; use http or https")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise BlockedDestinationError("URL has no host")
    if parsed.userinfo:
        raise BlockedDestinationError(
            f"URL for host {host!r} contains credentials; send them in a header instead"
        )
    port = parsed.port or (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise BlockedDestinationError(f"URL for host {host!r} has an invalid port {port}")
    if _parse_ip(host) is None and not _HOSTNAME.fullmatch(host):
        raise BlockedDestinationError(f"URL host {host!r} is not a valid host name")

    if _is_allowed_host(host, parsed.host, allowed_hosts):
        return Destination(parsed, scheme, host, port, addresses=())

    name = host.rstrip(".")
    if not allow_private and (name == "localhost" or name.endswith(".localhost")):
        raise BlockedDestinationError(_blocked(host, "localhost is this machine", allow_private))

    literal = _parse_ip(host)
    addresses = [literal] if literal is not None else _resolve(host, port, resolver)
    for ip in addresses:
        why = blocked_reason(ip, allow_private=allow_private)
        if why is not None:
            where = f"it is {why}" if literal is not None else f"it resolves to {_plain(ip)}, {why}"
            only_allowlist = allow_private or is_metadata_address(ip)
            raise BlockedDestinationError(_blocked(host, where, only_allowlist))
    return Destination(parsed, scheme, host, port, addresses=tuple(_plain(ip) for ip in addresses))


def blocked_reason(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``ip`` may not be called, or None if it may."""
    if is_metadata_address(ip):
        return "a cloud metadata endpoint"
    if allow_private:
        return None
    return _address_reason(ip)


def is_metadata_address(ip: IPAddress) -> bool:
    """True for cloud metadata endpoints, also in IPv6 forms that embed them."""
    if ip in _METADATA:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, _ = _embedded_ipv4(ip)
        return embedded is not None and embedded in _METADATA
    return False


def _address_reason(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, kind = _embedded_ipv4(ip)
        if embedded is not None:
            inner = _address_reason(embedded)
            return f"{kind} of {embedded}, {inner}" if inner else None
        table: list[tuple[Any, str]] = _BLOCKED_V6
    else:
        table = _BLOCKED_V4
    for net, why in table:
        if ip in net:
            return why
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "the IPv4-mapped form"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "the NAT64 form"
    if ip.sixtofour is not None:
        return ip.sixtofour, "the 6to4 form"
    return None, ""


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        infos = list(resolver(host, port))
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"could not resolve host {host!r}: {exc}") from exc
    found: list[IPAddress] = []
    for info in infos:
        raw = info[4][0]
        ip = _parse_ip(raw) if isinstance(raw, str) else None
        if ip is None:
            raise BlockedDestinationError(f"host {host!r} resolved to an unrecognised address {raw!r}")
        if ip not in found:
            found.append(ip)
    if not found:
        raise DeliveryError(f"could not resolve host {host!r}: no addresses")
    return found


def _is_allowed_host(host: str, display_host: str, allowed_hosts: Collection[str]) -> bool:
    if not allowed_hosts:
        return False
    candidates = {_normalize_host(host), _normalize_host(display_host)}
    return any(_normalize_host(entry) in candidates for entry in allowed_hosts)


def _normalize_host(host: str) -> str:
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    ip = _parse_ip(host)
    return _plain(ip) if ip is not None else host


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _plain(ip: IPAddress) -> str:
    """The address without an IPv6 zone id."""
    return str(ip).split("%", 1)[0]


def _blocked(host: str, why: str, only_allowlist: bool) -> str:
    hint = "add the host to STOREFLOW_WEBHOOK_ALLOWED_HOSTS if it is intended" if only_allowlist else HINT
    return f"destination host {host!r} is blocked: {why}; {hint}"

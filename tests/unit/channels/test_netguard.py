"""The private-network guard, with a resolver function that returns given addresses."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest

from storeflow.channels.netguard import check_destination, resolve_destination
from storeflow.errors import BlockedDestinationError, DeliveryError

Resolver = Callable[[str, int], list[tuple[Any, ...]]]


def resolves_to(*ips: str) -> Resolver:
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    return resolve


def must_not_resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    raise AssertionError(f"resolver called for {host}")


BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private (RFC 1918)"),
    ("172.16.0.1", "private (RFC 1918)"),
    ("172.31.255.254", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("169.254.10.10", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.5", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1, a private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:100.64.1.1", "carrier-grade NAT"),
    ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1"),
    ("2002:c0a8:101::1", "6to4 form of 192.168.1.1"),
    ("::7f00:1", "IPv4-compatible"),
]

PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("ip", "why"), BLOCKED)
def test_name_resolving_to_a_blocked_address_is_refused(ip: str, why: str) -> None:
    with pytest.raises(BlockedDestinationError) as info:
        check_destination("https://hooks.example.com/x", allow_private=False, resolver=resolves_to(ip))
    message = str(info.value)
    assert "'hooks.example.com'" in message
    assert why in message
    assert "STOREFLOW_WEBHOOK_ALLOWED_HOSTS" in message


@pytest.mark.parametrize(("ip", "why"), BLOCKED)
def test_ip_literal_in_a_blocked_range_is_refused_without_resolving(ip: str, why: str) -> None:
    host = f"[{ip}]" if ":" in ip else ip
    with pytest.raises(BlockedDestinationError, match="is blocked"):
        check_destination(f"http://{host}:8080/x", allow_private=False, resolver=must_not_resolve)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass_and_are_returned_for_pinning(ip: str) -> None:
    dest = resolve_destination("https://hooks.example.com/x", allow_private=False, resolver=resolves_to(ip))
    assert [ipaddress.ip_address(a) for a in dest.addresses] == [ipaddress.ip_address(ip)]
    assert (dest.scheme, dest.host, dest.port) == ("https", "hooks.example.com", 443)


def test_any_blocked_address_among_several_blocks() -> None:
    with pytest.raises(BlockedDestinationError, match=r"resolves to 10\.0\.0\.7"):
        check_destination(
            "https://hooks.example.com/x",
            allow_private=False,
            resolver=resolves_to("93.184.216.34", "2606:4700:4700::1111", "10.0.0.7"),
        )


def test_all_checked_addresses_are_returned_in_order_without_duplicates() -> None:
    dest = resolve_destination(
        "http://hooks.example.com:8080/x",
        allow_private=False,
        resolver=resolves_to("2606:4700:4700::1111", "93.184.216.34", "93.184.216.34"),
    )
    assert dest.addresses == ("2606:4700:4700::1111", "93.184.216.34")
    assert dest.port == 8080
    assert dest.netloc == "hooks.example.com:8080"


def test_default_hint_names_both_settings() -> None:
    with pytest.raises(BlockedDestinationError) as info:
        check_destination("http://10.0.0.1/", allow_private=False)
    assert "set STOREFLOW_WEBHOOK_ALLOW_PRIVATE=true" in str(info.value)
    assert "add the host to STOREFLOW_WEBHOOK_ALLOWED_HOSTS" in str(info.value)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
def test_localhost_by_name_is_refused_without_resolving(host: str) -> None:
    with pytest.raises(BlockedDestinationError, match="localhost"):
        check_destination(f"http://{host}:8000/x", allow_private=False, resolver=must_not_resolve)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001"])
def test_odd_ipv4_spellings_are_caught_by_resolving(host: str) -> None:
    # The system resolver turns these into 127.0.0.1 (no DNS traffic); the guard checks the result.
    with pytest.raises(BlockedDestinationError, match=r"127\.0\.0\.1, a loopback address"):
        check_destination(f"http://{host}/x", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "hooks.example.com/x",
    ],
)
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(BlockedDestinationError, match="scheme"):
        check_destination(url, allow_private=True, resolver=must_not_resolve)


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@hooks.example.com/x", "https://user@hooks.example.com/", "http://evil.com\\@10.0.0.1/"],
)
def test_credentials_are_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(BlockedDestinationError, match="credentials") as info:
        check_destination(url, allow_private=True, resolver=resolves_to("93.184.216.34"))
    assert "pw" not in str(info.value)


def test_allow_private_lets_private_addresses_through() -> None:
    for ip in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "fd00::1", "::1", "169.254.1.1", "100.64.0.1"):
        dest = resolve_destination("http://svc.internal/x", allow_private=True, resolver=resolves_to(ip))
        assert dest.addresses == (ip,)
    check_destination("http://localhost/x", allow_private=True, resolver=resolves_to("127.0.0.1", "::1"))


@pytest.mark.parametrize(
    "ip", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"]
)
def test_metadata_endpoint_stays_blocked_with_allow_private(ip: str) -> None:
    with pytest.raises(BlockedDestinationError, match="cloud metadata") as info:
        check_destination("http://metadata.internal/", allow_private=True, resolver=resolves_to(ip))
    assert "STOREFLOW_WEBHOOK_ALLOW_PRIVATE" not in str(info.value)
    assert "STOREFLOW_WEBHOOK_ALLOWED_HOSTS" in str(info.value)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://hooks.internal:9000/x", ["hooks.internal"]),
        ("http://HOOKS.internal./x", ["hooks.internal"]),
        ("http://10.0.0.5/x", ["10.0.0.5"]),
        ("http://[fd00::5]/x", ["[FD00::5]"]),
        ("http://169.254.169.254/latest", ["169.254.169.254"]),
        ("http://bücher.example/x", ["xn--bcher-kva.example"]),
        ("http://xn--bcher-kva.example/x", ["bücher.example"]),
    ],
)
def test_allowed_hosts_skip_address_checks_and_are_not_pinned(url: str, allowed: list[str]) -> None:
    dest = resolve_destination(url, allow_private=False, allowed_hosts=allowed, resolver=must_not_resolve)
    assert dest.addresses == ()


def test_allowed_hosts_do_not_match_other_hosts() -> None:
    with pytest.raises(BlockedDestinationError):
        check_destination(
            "http://evil-hooks.internal/",
            allow_private=False,
            allowed_hosts=["hooks.internal"],
            resolver=resolves_to("10.0.0.1"),
        )


def test_resolution_failure_is_a_transient_delivery_error() -> None:
    def failing(host: str, port: int) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(DeliveryError, match=r"could not resolve host 'hooks\.example\.com'") as info:
        check_destination("https://hooks.example.com/", allow_private=False, resolver=failing)
    assert not isinstance(info.value, BlockedDestinationError)


def test_resolving_to_nothing_is_a_transient_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="no addresses") as info:
        check_destination("https://hooks.example.com/", allow_private=False, resolver=resolves_to())
    assert not isinstance(info.value, BlockedDestinationError)


def test_resolver_is_called_with_ascii_host_and_effective_port() -> None:
    calls: list[tuple[str, int]] = []

    def recording(host: str, port: int) -> list[tuple[Any, ...]]:
        calls.append((host, port))
        return resolves_to("93.184.216.34")(host, port)

    check_destination("https://Bücher.Example/x", allow_private=False, resolver=recording)
    check_destination("http://hooks.example.com/x", allow_private=False, resolver=recording)
    assert calls == [("xn--bcher-kva.example", 443), ("hooks.example.com", 80)]


@pytest.mark.parametrize(
    "url",
    ["http://", "http://exa mple.com/", "https://hooks.example.com:99999/", "http://a..b/", "http://-a.com/"],
)
def test_invalid_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedDestinationError):
        check_destination(url, allow_private=True, resolver=resolves_to("93.184.216.34"))

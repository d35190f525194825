"""Token buckets, in process: one per private key, one per client address for public keys.

Each bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a request takes
one token, and an empty bucket answers 429 with ``Retry-After``. A private key has one bucket; a
public key is shared by every visitor of a storefront, so it gets a bucket per client address
(:func:`client_address`; an IPv6 client per /64, which is what one host or home gets). Limits
are **per process**: with N API processes (or uvicorn workers) a client may send up to N times the
configured rate. Put a shared limiter in front (a proxy) if that matters.

Memory is bounded: a bucket that has refilled to its burst is the same as no bucket, so idle
buckets are dropped as requests come in, and past ``max_entries`` the least recently used bucket
goes (that client starts again with a full burst).

``X-Forwarded-For`` is honoured only when the connection comes from an address in the
``trusted_proxies`` setting (default: none). Then the client is the rightmost address in the
header that is not itself a trusted proxy; addresses further left were written by the client and
prove nothing.

Wall time: storeflow reads time only through its injected ``Clock``, so that virtual time can
run a month of flows in seconds. Rate limiting (and the API's other infrastructure timing: the
key cache TTL and request latency) is the one allowed exception: it must follow real elapsed
time even when the engine runs on a virtual clock. :func:`monotonic` here is the API's only
wall-time source; every user takes a ``now`` callable so tests can drive time by hand.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Timer = Callable[[], float]


def monotonic() -> float:
    """Seconds from a monotonic wall clock (the API's one wall-time source; see the module doc)."""
    return time.monotonic()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float = 0.0

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return out


@dataclass
class _Bucket:
    tokens: float
    updated: float
    full_at: float  # when the bucket will have refilled to its burst: from then on it is idle


class TokenBucketLimiter:
    """Token buckets keyed by a string (a key id, or key id and client). Thread-safe.

    ``rate <= 0`` turns limiting off. At most ``max_entries`` buckets are kept (see the module doc).
    """

    def __init__(self, now: Timer = monotonic, *, max_entries: int = 100_000) -> None:
        self._now = now
        self._max = max(1, max_entries)
        self._buckets: dict[str, _Bucket] = {}  # least recently used first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def take(self, key: str, rate: float, burst: int) -> Decision:
        """Take one token from ``key``'s bucket, creating it full if it does not exist."""
        burst = max(1, burst)
        if rate <= 0:
            return Decision(True, burst, burst)
        now = self._now()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            self._evict(now)
            if bucket is None:
                bucket = _Bucket(float(burst), now, now)
            self._buckets[key] = bucket  # most recently used last
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(burst), bucket.tokens + elapsed * rate)
            bucket.updated = now
            allowed = bucket.tokens >= 1.0
            if allowed:
                bucket.tokens -= 1.0
            bucket.full_at = now + (burst - bucket.tokens) / rate
            if allowed:
                return Decision(True, burst, int(bucket.tokens))
            return Decision(False, burst, 0, (1.0 - bucket.tokens) / rate)

    def _evict(self, now: float) -> None:
        """Drop idle buckets from the least recently used end, then any over the cap."""
        for _ in range(8):  # a few per call keeps each request O(1); idle ones are also dropped at the cap
            oldest = next(iter(self._buckets.values()), None)
            if oldest is None or oldest.full_at > now:
                break
            del self._buckets[next(iter(self._buckets))]
        while len(self._buckets) >= self._max:
            del self._buckets[next(iter(self._buckets))]


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR networks (``10.0.0.0/8``, ``::1``). Raises ValueError naming a bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address or network; use e.g. 10.0.0.1 or "
                             "10.0.0.0/8") from exc
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.9:443
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _bucket_name(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client a public key's request is counted against (see the module doc).

    ``peer`` is the connection's address (``scope["client"][0]``), ``forwarded_for`` the
    ``X-Forwarded-For`` header values in order, ``trusted`` the proxies allowed to set them.
    """
    peer_addr = _address(peer) if peer else None
    if peer_addr is None:
        return peer or "unknown"

    def is_trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(addr in net for net in trusted if net.version == addr.version)

    client = peer_addr
    if is_trusted(peer_addr):
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:
                break  # not written by a proxy that we trust: keep the last trusted hop
            client = addr
            if not is_trusted(addr):
                break
    return _bucket_name(client)

"""Per-key token buckets, in process.

Each API key gets a bucket holding up to ``burst`` tokens that refills at ``rate`` tokens per
second; a request takes one token, and an empty bucket answers 429 with ``Retry-After``. Limits
are **per process**: with N API processes (or uvicorn workers) a key may send up to N times the
configured rate. Put a shared limiter in front (a proxy) if that matters.

Wall time: storeflow reads time only through its injected ``Clock``, so that virtual time can
run a month of flows in seconds. Rate limiting (and the API's other infrastructure timing: the
key cache TTL and request latency) is the one allowed exception: it must follow real elapsed
time even when the engine runs on a virtual clock. :func:`monotonic` here is the API's only
wall-time source; every user takes a ``now`` callable so tests can drive time by hand.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


class TokenBucketLimiter:
    """Token buckets keyed by API key id. Thread-safe. ``rate <= 0`` turns limiting off."""

    def __init__(self, now: Timer = monotonic) -> None:
        self._now = now
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int) -> Decision:
        burst = max(1, burst)
        if rate <= 0:
            return Decision(True, burst, burst)
        now = self._now()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(burst), now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(burst), bucket.tokens + elapsed * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Decision(True, burst, int(bucket.tokens))
            return Decision(False, burst, 0, (1.0 - bucket.tokens) / rate)

"""When to try a delivery again, and how long to wait first.

The schedule is deterministic: the jitter comes from ``sha256(key:attempt)``, not from a random
generator, so a replay (or a simulation on a virtual clock) computes exactly the same delays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from storeflow.channels.base import DeliveryResult


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with a hard cap and deterministic downward jitter.

    The un-jittered delay after attempt ``n`` is ``min(cap, base * factor ** (n - 1))``; the jitter
    shortens it by up to ``jitter`` (a fraction), so ``cap`` is a true upper bound and ``base`` is the
    longest first delay. ``max_attempts`` counts every attempt, the first one included.
    """

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=10)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base <= timedelta(0):
            raise ValueError(f"base must be positive, got {self.base}")
        if self.cap < self.base:
            raise ValueError(f"cap ({self.cap}) must be >= base ({self.base})")
        if not self.factor >= 1.0:  # also rejects NaN
            raise ValueError(f"factor must be >= 1.0, got {self.factor}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def delay(self, attempt: int, key: str) -> timedelta:
        """How long to wait after failed attempt number ``attempt`` (1-based) before the next one."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        cap_s = self.cap.total_seconds()
        try:
            raw_s = self.base.total_seconds() * self.factor ** (attempt - 1)
        except OverflowError:
            raw_s = cap_s
        capped_s = min(raw_s, cap_s)
        return timedelta(seconds=capped_s * (1.0 - self.jitter * _unit_fraction(key, attempt)))

    def should_retry(self, result: DeliveryResult, attempt: int) -> bool:
        """True if ``result`` (of attempt number ``attempt``) is transient and attempts remain."""
        return result.status == "transient_failure" and attempt < self.max_attempts

    def next_delay(self, result: DeliveryResult, attempt: int, key: str) -> timedelta:
        """The policy delay, stretched to the receiver's ``Retry-After`` when that is longer."""
        delay = self.delay(attempt, key)
        if result.retry_after is not None and result.retry_after > delay:
            return result.retry_after
        return delay


def _unit_fraction(key: str, attempt: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``attempt``."""
    digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64

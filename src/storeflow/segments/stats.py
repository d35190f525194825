"""Computing the segment statistics (``SegmentStats``: RFM quintile cut points and 1st..99th
percentiles of spend and order count) from the store's customers, keeping them in the ``meta`` table
under ``"segment_stats"``, and what a change of them sets off.

The customers are the unmerged profiles with an order; spend is ``total_spent`` in the store's
currency (0 for a customer who only bought in other currencies). With the ``N`` customers sorted
by a metric from the smallest value (recency: from the latest last order), ``v[k]`` being the k-th:

- the quintile cut points (RFM scores) are ``v[max(1, floor(q * N / 5))]`` for q = 1..4, so a score
  counts the cut points a value is above (recency: at or under): with distinct values each score
  holds a fifth of the customers;
- the p-th percentile (``top``) is ``v[min(N, floor(p * N / 100) + 1)]``, so the customers at or
  above the (100 - N)th percentile, ``top: {percent: N}``, are the ``ceil(N % of the customers)``
  with the highest values (more when customers tie at the cut): the top 10 % of 15 customers are 2.

Every rank is read by one ``ROW_NUMBER()`` query per metric, on both backends. The app refreshes the
statistics once a day (and ``storeflow segments stats --refresh`` on demand); when they change, every
live segment whose condition uses ``rfm`` or ``top`` gets ``computed_version`` None, so the membership
engine computes it again in full.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from storeflow.clock import Clock
from storeflow.flows.conditions import Rfm, TopPercent, iter_conditions
from storeflow.flows.segment_stats import SegmentStats
from storeflow.segments.definition import load_segment
from storeflow.store.base import Store, StoreTx

log = logging.getLogger("storeflow.segments")

META_KEY: Final = "segment_stats"
REFRESH_EVERY: Final = timedelta(days=1)
QUINTILES: Final = (1, 2, 3, 4)
PERCENTILES: Final = tuple(range(1, 100))


def quintile_rank(q: int, n: int) -> int:
    """The 1-based rank of the q-th quintile cut point among ``n`` sorted values."""
    return max(1, q * n // 5)


def percentile_rank(p: int, n: int) -> int:
    """The 1-based rank of the p-th percentile among ``n`` sorted values."""
    return min(n, p * n // 100 + 1)


def compute_stats(tx: StoreTx, currency: str, now: datetime) -> SegmentStats:
    """The statistics of the store's customers as of ``now`` (reads only)."""
    n = tx.count_customers()
    if n == 0:
        zero = timedelta(0)
        return SegmentStats(currency=currency, recency=(zero, zero, zero, zero), frequency=(0, 0, 0, 0),
                            monetary=(Decimal(0), Decimal(0), Decimal(0), Decimal(0)), customers=0)
    q_ranks = [quintile_rank(q, n) for q in QUINTILES]
    p_ranks = [percentile_rank(p, n) for p in PERCENTILES]
    last = tx.customer_values_at("recency", currency, q_ranks)
    freq = tx.customer_values_at("frequency", currency, [*q_ranks, *p_ranks])
    spend = tx.customer_values_at("monetary", currency, [*q_ranks, *p_ranks])
    r = [max(timedelta(0), now - last[k]) for k in q_ranks]
    f = [int(freq[k]) for k in q_ranks]
    m = [Decimal(spend[k]) for k in q_ranks]
    return SegmentStats(
        currency=currency,
        recency=(r[0], r[1], r[2], r[3]),
        frequency=(f[0], f[1], f[2], f[3]),
        monetary=(m[0], m[1], m[2], m[3]),
        monetary_percentiles=tuple(Decimal(spend[k]) for k in p_ranks),
        frequency_percentiles=tuple(int(freq[k]) for k in p_ranks),
        customers=n,
    )


def load_stats(tx: StoreTx) -> tuple[SegmentStats, datetime | None] | None:
    """The stored statistics and when they were computed; None before the first computation."""
    raw = tx.meta_value(META_KEY)
    if not raw:
        return None
    data: dict[str, Any] = json.loads(raw)
    at = data.get("computed_at")
    return SegmentStats.from_json(data), datetime.fromisoformat(at) if at else None


def stats_segments(definitions: dict[str, dict[str, Any]]) -> list[str]:
    """The ids of the segments (id -> stored document) whose condition reads the statistics."""
    found = []
    for segment_id, document in sorted(definitions.items()):
        condition = load_segment(document, source=f"segment {segment_id}").condition
        if any(isinstance(node, Rfm | TopPercent) for node in iter_conditions(condition)):
            found.append(segment_id)
    return found


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: the statistics, whether they changed, and the segments to recompute."""

    stats: SegmentStats
    computed_at: datetime
    changed: bool
    recomputed: tuple[str, ...] = ()


def refresh_stats(tx: StoreTx, currency: str, now: datetime) -> Refreshed:
    """Compute the statistics and store them; when they differ from the stored ones, mark every live
    segment using rfm or top for a full computation (``computed_version`` None)."""
    stats = compute_stats(tx, currency, now)
    before = load_stats(tx)
    changed = before is None or before[0] != stats
    tx.set_meta_value(META_KEY, json.dumps({**stats.to_json(), "computed_at": now.isoformat()}, sort_keys=True))
    recomputed: list[str] = []
    if changed:
        recomputed = stats_segments(tx.live_segment_definitions())
        for segment_id in recomputed:
            tx.update_segment(segment_id, computed_version=None, computed_at=None)
    return Refreshed(stats, now, changed, tuple(recomputed))


class StatsRefresher:
    """Keeps the stored statistics at most a day old while a live segment uses rfm or top: ``tick``
    (in the app's drain) refreshes them when a day has passed since they were computed (by this
    process or another), asking the store only then (and once at start)."""

    def __init__(self, store: Store, clock: Clock, currency: str, *, every: timedelta = REFRESH_EVERY,
                 needed: Callable[[], bool] | None = None) -> None:
        self.store, self.clock, self.currency, self.every = store, clock, currency, every
        self.needed = needed
        """Whether any live segment reads the statistics (None: always refresh)."""
        self._next: datetime | None = None

    def tick(self) -> Refreshed | None:
        """Refresh the statistics if a segment needs them and they are a day old (or missing)."""
        if self.needed is not None and not self.needed():
            return None
        now = self.clock.now()
        if self._next is not None and now < self._next:
            return None
        with self.store.read() as tx:  # another process may have refreshed them meanwhile
            stored = load_stats(tx)
        if stored is not None and stored[1] is not None and stored[0].currency == self.currency \
                and now < stored[1] + self.every:
            self._next = stored[1] + self.every
            return None
        return self.refresh()

    def refresh(self) -> Refreshed:
        """Compute and store the statistics now."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            done = refresh_stats(tx, self.currency, now)
        self._next = now + self.every
        if done.recomputed:
            log.info("segment statistics changed: computing %s again", ", ".join(done.recomputed))
        return done


__all__ = ["META_KEY", "Refreshed", "StatsRefresher", "compute_stats", "load_stats", "percentile_rank",
           "quintile_rank", "refresh_stats", "stats_segments"]

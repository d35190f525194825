"""The segment statistics (``SegmentStats``, meta ``"segment_stats"``) a flow's ``rfm`` and ``top``
conditions read, in ingest (trigger filters, ``wait_for.where``) and in the worker (``if``,
``exit_when``).

Cheap: a batch reads the stored statistics at most once, and only when a flow it evaluates uses rfm
or top (a property of the immutable definition, worked out once per definition); the parsed object
is kept across batches and parsed again only when the stored text changed (a refresh, at most daily).
"""

from __future__ import annotations

import json
import threading
from typing import Final

from storeflow.flows.conditions import Condition, Rfm, TopPercent, iter_conditions
from storeflow.flows.cursor import iter_steps
from storeflow.flows.definition import FlowDefinition
from storeflow.flows.segment_stats import SegmentStats
from storeflow.flows.steps import IfStep, WaitForStep
from storeflow.store.base import StoreTx

META_KEY: Final = "segment_stats"  # segments/stats.py keeps them there
_USES: dict[int, tuple[FlowDefinition, bool]] = {}
_USES_LOCK = threading.Lock()


def _conditions(defn: FlowDefinition) -> list[Condition]:
    trigger_filter: Condition | None = getattr(defn.trigger, "filter", None)
    found = [c for c in (trigger_filter, defn.exit_when) if c is not None]
    for _, step in iter_steps(defn):
        if isinstance(step, IfStep):
            found.append(step.condition)
        elif isinstance(step, WaitForStep) and step.where is not None:
            found.append(step.where)
    return found


def uses_stats(defn: FlowDefinition) -> bool:
    """Whether a condition of the flow (trigger filter, exit_when, if, wait_for.where) uses rfm or top."""
    with _USES_LOCK:
        known = _USES.get(id(defn))
    if known is not None and known[0] is defn:
        return known[1]
    uses = any(isinstance(node, Rfm | TopPercent) for c in _conditions(defn) for node in iter_conditions(c))
    with _USES_LOCK:
        if len(_USES) >= 1024:
            _USES.clear()
        _USES[id(defn)] = (defn, uses)
    return uses


class StatsCache:
    """The parsed statistics, kept while the stored text stays the same (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: str | None = None
        self._stats: SegmentStats | None = None

    def load(self, tx: StoreTx) -> SegmentStats | None:
        """The stored statistics (one small read); None before the first computation."""
        text = tx.meta_value(META_KEY)
        with self._lock:
            if text == self._text:
                return self._stats
        stats = SegmentStats.from_json(json.loads(text)) if text else None
        with self._lock:
            self._text, self._stats = text, stats
        return stats

    def batch(self, tx: StoreTx) -> BatchStats:
        """The statistics of one batch in ``tx``: read when a flow first needs them."""
        return BatchStats(self, tx)


class BatchStats:
    """One batch's statistics: read from the store at most once, when first asked for."""

    def __init__(self, cache: StatsCache, tx: StoreTx) -> None:
        self.cache, self.tx = cache, tx
        self._loaded = False
        self._stats: SegmentStats | None = None

    def get(self) -> SegmentStats | None:
        if not self._loaded:
            self._stats, self._loaded = self.cache.load(self.tx), True
        return self._stats

    def for_flow(self, defn: FlowDefinition) -> SegmentStats | None:
        """The statistics when the flow's conditions use them, else None (no read)."""
        return self.get() if uses_stats(defn) else None


__all__ = ["BatchStats", "StatsCache", "uses_stats"]

"""Cost warnings for segment conditions: history nodes whose SQL scans a profile's whole event history.

A ``history`` node over events is a correlated subquery on the ``(profile_id, type, occurred_at)``
index: with a window that has a lower bound (``within``, ``since``, ``between``) it reads one index
range per profile; without one (no window, or ``before``) it reads every event of that type the
profile ever had, and without an event type every event of the profile. That is fine for rare types
(``order_placed``) and costly for high-volume ones (``page_viewed``): :func:`scan_warnings` names each
such node with the rows it may read, for the API's validate and preview.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import func, select

from storeflow.flows.conditions import AllOf, AnyOf, Condition, History, Not
from storeflow.store.tables import events

HIGH_VOLUME_ROWS: Final = 100_000
"""An event type with at least this many stored rows is high-volume."""
HIGH_VOLUME_TYPES: Final = frozenset({
    "page_viewed", "product_viewed", "viewed", "session_started", "search", "searched", "clicked", "email_opened",
    "message_opened", "added_to_cart", "cart_updated",
})  # fmt: skip
"""Types taken as high-volume when no row counts are given."""


def event_type_counts(conn: Any) -> dict[str, int]:
    """Stored events per type (one ``GROUP BY`` over the ``(type, occurred_at)`` index)."""
    rows = conn.execute(select(events.c.type, func.count()).group_by(events.c.type))
    return {str(r[0]): int(r[1]) for r in rows}


def scan_warnings(condition: Condition, counts: Mapping[str, int] | None = None, *,
                  threshold: int = HIGH_VOLUME_ROWS) -> list[str]:
    """One message per history node that scans an unbounded event history of a high-volume type (or of
    every type), naming the node's path in the condition and its cost. ``counts`` (event type ->
    stored rows, :func:`event_type_counts`) gives the cost; without it, types are judged by name."""
    found: list[str] = []
    _walk(condition, "condition", counts, threshold, found)
    return found


def _walk(node: Condition, path: str, counts: Mapping[str, int] | None, threshold: int, found: list[str]) -> None:
    if isinstance(node, AllOf | AnyOf):
        key = "all" if isinstance(node, AllOf) else "any"
        for i, child in enumerate(node.conditions):
            _walk(child, f"{path}.{key}[{i}]", counts, threshold, found)
    elif isinstance(node, Not):
        _walk(node.condition, f"{path}.not", counts, threshold, found)
    elif isinstance(node, History) and node.source == "events":
        warning = _history_warning(node, f"{path}.history", counts, threshold)
        if warning is not None:
            found.append(warning)


def _history_warning(node: History, path: str, counts: Mapping[str, int] | None, threshold: int) -> str | None:
    window = node.window
    bounded = window.within is not None or window.since is not None or window.between is not None
    if bounded:
        return None
    hint = "add a window (within: 90d, since: 2026-01-01 or between: [...]) so it reads an index range"
    if node.event is None:
        total = sum(counts.values()) if counts is not None else None
        cost = f"up to {total:,} stored events" if total is not None else "every stored event"
        return f"{path}: no event type and no window: scans each profile's whole event history ({cost}); " \
               f"name the event and {hint}"
    if counts is not None:
        rows = counts.get(node.event, 0)
        if rows < threshold:
            return None
        cost = f"{rows:,} stored {node.event} events"
    elif node.event in HIGH_VOLUME_TYPES:
        cost = f"{node.event} is a high-volume event type"
    else:
        return None
    return f"{path}: no window over {node.event}: scans each profile's whole {node.event} history ({cost}); {hint}"


__all__ = ["HIGH_VOLUME_ROWS", "HIGH_VOLUME_TYPES", "event_type_counts", "scan_warnings"]

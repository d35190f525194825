"""Names a flow document may use: event types, field roots, weekdays, and "did you mean" suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final, Literal

from storeflow.model.events import EVENT_TYPES

KNOWN_EVENT_TYPES: Final[frozenset[str]] = EVENT_TYPES
"""The commerce vocabulary (storeflow.model.events); custom event types are allowed too."""

FieldRoot = Literal["event", "profile", "order", "cart", "product", "run", "message"]
FIELD_ROOTS: Final[tuple[FieldRoot, ...]] = ("event", "profile", "order", "cart", "product", "run")
"""The roots of the records a flow sees (conditions outside a collection, templates, recipients)."""
ALL_ROOTS: Final[tuple[FieldRoot, ...]] = (*FIELD_ROOTS, "message")
"""Every declared root; ``message`` is read only inside ``{messages: {where: ...}}``."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def suggest(word: str, options: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The option closest to ``word`` if it is close enough to be a likely typo, else None."""
    matches = difflib.get_close_matches(word, sorted(options), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.75) -> str | None:
    """A hint like ``did you mean "order_placed"?`` or None."""
    match = suggest(word, options, cutoff)
    return f'did you mean "{match}"?' if match else None


def event_type_hint(event_type: str) -> str | None:
    """For an unknown event type that looks like a typo of a known one, the hint; otherwise None.

    Unknown event types are allowed (stores send custom events), so only near misses are problems.
    """
    if event_type in KNOWN_EVENT_TYPES:
        return None
    return did_you_mean(event_type, KNOWN_EVENT_TYPES, cutoff=0.8)

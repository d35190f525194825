"""Canonical types: events, profiles, money and the commerce vocabulary."""

from storeflow.model.events import EVENT_TYPES, SEGMENT_SPEC_NAMES, CanonicalEvent, EventIn, normalize_event
from storeflow.model.money import Money, from_minor, to_minor
from storeflow.model.profiles import CHANNELS, CONSENT_STATES, IdentityHints, normalize_email, normalize_phone

__all__ = [
    "CHANNELS",
    "CONSENT_STATES",
    "EVENT_TYPES",
    "SEGMENT_SPEC_NAMES",
    "CanonicalEvent",
    "EventIn",
    "IdentityHints",
    "Money",
    "from_minor",
    "normalize_email",
    "normalize_event",
    "normalize_phone",
    "to_minor",
]

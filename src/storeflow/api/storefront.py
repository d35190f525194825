"""What a public (storefront) key may send, and the refusals for everything else.

A public key ships in every visitor's browser, so anyone can read it and send with it. It may
therefore only say what a visitor can honestly say about themselves:

* **event types** (:data:`PUBLIC_EVENT_TYPES`): browsing (``product_viewed``), cart
  (``product_added_to_cart``, ``cart_updated``), ``checkout_started`` and ``identified``, plus
  the Segment e-commerce spec names that map to them (``Product Viewed``, ``Product Clicked``,
  ``Product Added``, ``Product Removed``, ``Cart Viewed``, ``Checkout Started``);
* **identities**: ``email`` and ``anonymous_id`` (alias ``anonymousId``) only;
* **profile fields** (:data:`PUBLIC_PROFILE_FIELDS`): ``locale`` and ``timezone`` only. Names,
  consent and other properties are read by flows and rendered into messages: anyone who knows a
  customer's email could otherwise rewrite what the store's own emails say to them;
* the event's ``id`` / ``occurred_at`` / ``properties``, as for any event.

Everything else needs a private key (server side): orders, stock, products, customers,
(un)subscribing, message events, custom event types, ``profile_id``, ``customer_id`` (``userId``),
``phone``, ``source``, ``profile.consent``, ``profile.properties`` and other profile fields.
Events sent with a public key get the source ``storefront``, so their ids cannot collide with (and
pre-empt as duplicates) the ids of events a server sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError as PydanticValidationError

from storeflow.errors import Problem
from storeflow.model.events import SEGMENT_SPEC_NAMES, EventIn

STOREFRONT_SOURCE: Final = "storefront"
"""The source of every event sent with a public key."""

_CANONICAL: Final = frozenset({"product_viewed", "product_added_to_cart", "cart_updated", "checkout_started",
                               "identified"})
PUBLIC_EVENT_TYPES: Final[frozenset[str]] = _CANONICAL | frozenset(
    name for name, canonical in SEGMENT_SPEC_NAMES.items() if canonical in _CANONICAL)
"""Event types (storeflow's names and their Segment spec names) a public key may send."""

PUBLIC_PROFILE_FIELDS: Final[frozenset[str]] = frozenset({"locale", "timezone"})
"""Keys of an event's ``profile`` object a public key may set."""

_HINT = "use a private key (server side) for"

# Top-level EventIn fields a public key may not set, with what the hint names.
_PRIVATE_FIELDS: Final[Mapping[str, tuple[str, str]]] = {
    "profile_id": ("a public key cannot address a profile by id", "profile ids"),
    "customer_id": ("a public key cannot claim a customer id (also sent as userId)", "customer ids"),
    "phone": ("a public key identifies visitors by email or anonymous_id only", "phone numbers"),
    "source": (f"events sent with a public key always have the source {STOREFRONT_SOURCE!r}",
               "other sources"),
}
_PROFILE_REASONS: Final[Mapping[str, tuple[str, str]]] = {
    "consent": ("a public key cannot change consent", "consent (subscribed/unsubscribed events or identify)"),
    "properties": ("a public key cannot set profile properties", "profile properties"),
}


def event_problems(event: EventIn) -> list[Problem]:
    """Why a public key may not send ``event`` (empty when it may), each naming the type or field."""
    problems: list[Problem] = []
    if event.type not in PUBLIC_EVENT_TYPES:
        allowed = ", ".join(sorted(_CANONICAL))
        problems.append(Problem("type", f"{event.type!r} is not a storefront event; a public key may send "
                                        f"only {allowed} (and their Segment spec names)",
                                f"{_HINT} {event.type!r}"))
    for name in sorted(event.model_fields_set & _PRIVATE_FIELDS.keys()):
        if getattr(event, name) is not None:
            message, what = _PRIVATE_FIELDS[name]
            problems.append(Problem(name, message, f"{_HINT} {what}"))
    for key in sorted((event.profile or {}).keys() - PUBLIC_PROFILE_FIELDS):
        message, what = _PROFILE_REASONS.get(key, (
            f"a public key may set only {', '.join(sorted(PUBLIC_PROFILE_FIELDS))} on a profile",
            "other profile fields"))
        problems.append(Problem(f"profile.{key}", message, f"{_HINT} {what}"))
    return problems


def refusal(problems: list[Problem]) -> str:
    """One message for all problems, each starting with its field path."""
    return "; ".join(p.format() for p in problems)


def check_item(item: Any) -> tuple[Any, str | None]:
    """For one batch item sent with a public key: (what to ingest, refusal or None).

    An item that is not a valid event is passed on unchanged, so that ingest rejects it with its
    usual message (422-style ``rejected``) and shape errors come before permission errors, as for
    a single event. A valid one is passed on parsed (ingest accepts an ``EventIn``).
    """
    if not isinstance(item, Mapping):
        return item, None
    try:
        event = EventIn.model_validate(item)
    except PydanticValidationError:
        return item, None
    problems = event_problems(event)
    return event, refusal(problems) if problems else None


__all__ = ["PUBLIC_EVENT_TYPES", "PUBLIC_PROFILE_FIELDS", "STOREFRONT_SOURCE", "check_item", "event_problems",
           "refusal"]

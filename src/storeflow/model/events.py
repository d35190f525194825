"""The canonical event, the commerce vocabulary, and normalization of incoming events.

Incoming events may use storeflow's names (``order_placed``) or the Segment e-commerce spec's
(``Order Completed``); both become the same canonical event.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from storeflow.model.bounds import check_document, check_occurred_at, check_text
from storeflow.model.profiles import IdentityHints, normalize_email, normalize_phone

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "product_viewed",
        "product_added_to_cart",
        "cart_updated",
        "checkout_started",
        "order_placed",
        "order_paid",
        "order_fulfilled",
        "order_cancelled",
        "order_refunded",
        "shipment_updated",
        "inventory_changed",
        "product_created",
        "product_updated",
        "customer_created",
        "customer_updated",
        "subscribed",
        "unsubscribed",
        "message_sent",
        "message_delivered",
        "message_opened",
        "message_clicked",
        "message_bounced",
        "message_complained",
        # derived by storeflow itself
        "stock_low",
        "stock_out",
        "stock_restored",
        "cart_abandoned",
        "segment_entered",
        "segment_exited",
        "identified",
    }
)

# Segment e-commerce spec v2 event names -> canonical types.
SEGMENT_SPEC_NAMES: dict[str, str] = {
    "Product Viewed": "product_viewed",
    "Product Clicked": "product_viewed",
    "Product Added": "product_added_to_cart",
    "Product Removed": "cart_updated",
    "Cart Viewed": "cart_updated",
    "Checkout Started": "checkout_started",
    "Order Completed": "order_placed",
    "Order Updated": "order_updated",
    "Order Refunded": "order_refunded",
    "Order Cancelled": "order_cancelled",
    "Product Added to Wishlist": "product_added_to_wishlist",
}

# Segment property names -> canonical property names.
# ``revenue`` keeps its name: the spec's Order Completed carries both revenue and subtotal.
_SEGMENT_PROPS = {"products": "items", "name": "title", "url": "product_url"}

_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ .:-]{0,99}$")
_MESSAGE_EVENTS = frozenset(t for t in EVENT_TYPES if t.startswith("message_"))
MESSAGE_EVENTS = _MESSAGE_EVENTS | {"message_sent"}
"""Events recording a message sent, delivered, opened, clicked...: the profile's messages changed."""
# Events that are not the customer's own activity: they do not move profiles.last_active_at.
# segment_entered / segment_exited are storeflow's own record of a membership change.
PASSIVE_EVENTS = MESSAGE_EVENTS | {"segment_entered", "segment_exited"}


class EventIn(BaseModel):
    """An event as clients send it (HTTP API, import files)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str = Field(validation_alias=AliasChoices("type", "event"), min_length=1, max_length=100)
    id: str | None = Field(default=None, validation_alias=AliasChoices("id", "idempotency_key", "messageId"),
                           max_length=200)
    occurred_at: datetime | None = Field(default=None, validation_alias=AliasChoices("occurred_at", "timestamp"))
    profile_id: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    customer_id: str | None = Field(default=None, validation_alias=AliasChoices("customer_id", "userId"),
                                    max_length=200)
    anonymous_id: str | None = Field(default=None, validation_alias=AliasChoices("anonymous_id", "anonymousId"),
                                     max_length=200)
    profile: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(default=None, max_length=50)

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        value = value.strip()
        if value in SEGMENT_SPEC_NAMES or value in EVENT_TYPES:
            return value
        if not _TYPE_RE.match(value):
            raise ValueError(
                f"{value!r} is not an event type; use letters, digits, spaces, '_', '.', ':' or '-' "
                "(e.g. order_placed or \"Order Completed\")"
            )
        return value

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)


@dataclass(frozen=True)
class CanonicalEvent:
    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    source: str
    idempotency_key: str
    hints: IdentityHints
    properties: dict[str, Any]
    profile_updates: dict[str, Any] = field(default_factory=dict)

    def as_record(self, profile_id: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
            "source": self.source,
            "profile_id": profile_id,
            "properties": self.properties,
        }


def _map_segment_props(value: Any) -> Any:
    if isinstance(value, dict):
        return {_SEGMENT_PROPS.get(k, k): _map_segment_props(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_segment_props(v) for v in value]
    return value


def _default_key(ev: EventIn, etype: str, occurred_at: datetime | None) -> str:
    """Without a client id, identical content is the same event (safe retries of the same body)."""
    blob = json.dumps(
        [etype, occurred_at.isoformat() if occurred_at else None, ev.profile_id, ev.email, ev.phone,
         ev.customer_id, ev.anonymous_id, ev.properties, ev.profile],
        sort_keys=True, default=str,
    )
    return "h:" + hashlib.sha256(blob.encode()).hexdigest()[:40]


_ids = random.Random()  # private: code that seeds the global generator (a test tool, a library) cannot repeat ids
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)  # a forked child draws its own ids, as the global one does


def new_id(prefix: str) -> str:
    """A 128-bit random id. Ids name rows, they guard nothing, so the fast Mersenne Twister serves;
    uuid4's read of the OS's random source cost more than the rest of an event's validation. The
    generator is storeflow's own, seeded from the OS and reseeded in forked children: a
    ``random.seed(0)`` elsewhere in the process (Hypothesis does that for every example) used to
    make every new id the same and fail the batch on the primary key."""
    return f"{prefix}_{_ids.getrandbits(128):032x}"


_ID_FIELDS = ("id", "profile_id", "email", "phone", "customer_id", "anonymous_id", "source")
DEFAULT_MAX_FUTURE_SKEW_S = 300.0


def check_bounds(ev: EventIn) -> None:
    """Refuse what cannot be stored or would cost too much (see storeflow.model.bounds): text with
    NUL or lone surrogates, integers beyond 64 bits, NaN and infinities, properties nested too deep
    or too large. Raises ValueError naming the field."""
    for name in _ID_FIELDS:
        value = getattr(ev, name)
        if value is not None and (not value.isascii() or "\x00" in value):
            check_text(value, name)
    if ev.properties:
        check_document(ev.properties, "properties")
    if ev.profile:
        check_document(ev.profile, "profile")


def normalize_event(ev: EventIn, received_at: datetime, default_source: str = "api",
                    phone_region: str = "US", max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> CanonicalEvent:
    """Map an incoming event to the canonical form. Raises ValueError naming the bad field.

    ``occurred_at`` may be at most ``max_future_skew_s`` seconds after ``received_at`` (a client's
    clock running a little fast), and no earlier than 1900.
    """
    check_bounds(ev)
    raw_type = ev.type
    etype = SEGMENT_SPEC_NAMES.get(raw_type, raw_type)
    props = _map_segment_props(ev.properties) if raw_type in SEGMENT_SPEC_NAMES else dict(ev.properties)
    occurred = None
    if ev.occurred_at is not None:
        skew = min(max_future_skew_s, 1e10)  # a setting of centuries must not overflow the calendar
        occurred = check_occurred_at(ev.occurred_at, received_at + timedelta(seconds=skew), max_future_skew_s)
    phone = None
    if ev.phone:
        try:
            phone = normalize_phone(ev.phone, phone_region)
        except ValueError as exc:
            raise ValueError(f"phone: {exc}") from exc
    source = ev.source or default_source
    customer_id = f"{source}:{ev.customer_id}" if ev.customer_id and ":" not in ev.customer_id else ev.customer_id
    key = f"{source}:{ev.id}" if ev.id else _default_key(ev, etype, occurred)
    hints = IdentityHints(profile_id=ev.profile_id, email=ev.email, phone=phone, customer_id=customer_id,
                          anonymous_id=ev.anonymous_id)
    return CanonicalEvent(
        id=new_id("evt"),
        type=etype,
        occurred_at=occurred or received_at,
        received_at=received_at,
        source=source,
        idempotency_key=key,
        hints=hints,
        properties=props,
        profile_updates=dict(ev.profile or {}),
    )

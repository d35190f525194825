"""An in-memory ProfileData (flows/evaluate.py) for the evaluator's unit tests: one profile's
collections as plain lists, as a store would answer them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storeflow.flows.values import as_datetime


@dataclass
class MemoryProfileData:
    """The data of one profile; every method answers it whatever the profile id asked."""

    event_list: list[dict[str, Any]] = field(default_factory=list)
    order_list: list[dict[str, Any]] = field(default_factory=list)
    cart_list: list[dict[str, Any]] = field(default_factory=list)
    message_list: list[dict[str, Any]] = field(default_factory=list)
    identities: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()

    def events(self, profile_id: str, event_type: str, since: datetime | None,
               until: datetime) -> Sequence[Mapping[str, Any]]:
        found = []
        for event in self.event_list:
            at = as_datetime(event["occurred_at"])
            if event["type"] == event_type and at is not None and (since is None or since <= at) and at <= until:
                found.append(event)
        return found

    def orders(self, profile_id: str) -> Sequence[Mapping[str, Any]]:
        return self.order_list

    def carts(self, profile_id: str) -> Sequence[Mapping[str, Any]]:
        return self.cart_list

    def messages(self, profile_id: str, channel: str | None) -> Sequence[Mapping[str, Any]]:
        return [m for m in self.message_list if channel is None or m.get("channel") == channel]

    def identity_kinds(self, profile_id: str) -> frozenset[str]:
        return self.identities

    def segments_of(self, profile_id: str) -> frozenset[str]:
        return self.segments

"""Effects a step produces, and what they do to the rows they touch (the worker applies them to its
batch and writes them set-based: ``storeflow.engine.batch``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storeflow.model.events import new_id
from storeflow.store.row_changes import add_exactly, tag_list


@dataclass(frozen=True)
class Tag:
    target: str  # profile | order | product
    target_id: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetProperty:
    profile_id: str
    name: str
    value: Any = None
    increment: Any = None


@dataclass(frozen=True)
class ProductStatus:
    product_id: str
    status: str  # published | hidden


@dataclass(frozen=True)
class Send:
    """A message for the outbox; its row is also the message record."""

    channel: str
    idempotency_key: str
    payload: dict[str, Any]
    run_id: str
    step_key: str
    message_id: str | None = None
    status: str = "pending"  # or skipped / suppressed, recorded with the reason and never sent
    reason: str | None = None
    kind: str | None = None
    address: str | None = None
    profile_id: str | None = None
    flow_id: str | None = None
    flow_version: int | None = None
    segments: int | None = None


@dataclass(frozen=True)
class AddWait:
    run_id: str
    profile_id: str
    event_type: str
    since: datetime


@dataclass(frozen=True)
class RemoveWait:
    run_id: str


Effect = Tag | SetProperty | ProductStatus | Send | AddWait | RemoveWait


def tagged(tags: list[str] | None, eff: Tag) -> list[str]:
    """The tags after ``eff``: its removals gone, its additions appended once."""
    return tag_list(tags, eff.add, eff.remove)


def with_property(properties: dict[str, Any] | None, eff: SetProperty) -> dict[str, Any]:
    """A copy of ``properties`` with ``eff`` applied (an increment adds exactly)."""
    props = dict(properties or {})
    if eff.increment is not None:
        props[eff.name] = add_exactly(props.get(eff.name), eff.increment, eff.name)
    else:
        props[eff.name] = eff.value
    return props


def outbox_row(eff: Send, now: datetime) -> dict[str, Any]:
    """The outbox row of a message: pending ones are due now, the others are only a record."""
    pending = eff.status == "pending"
    return {
        "id": eff.message_id or new_id("msg"), "run_id": eff.run_id, "step_key": eff.step_key,
        "channel": eff.channel, "idempotency_key": eff.idempotency_key, "payload": eff.payload,
        "status": eff.status, "attempts": 0, "next_attempt_at": now if pending else None, "created_at": now,
        "updated_at": now, "last_error": eff.reason, "kind": eff.kind, "address": eff.address,
        "profile_id": eff.profile_id, "flow_id": eff.flow_id, "flow_version": eff.flow_version,
        "segments": eff.segments,
    }

"""Effects a step produces, and how they are applied inside the step's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from storeflow.errors import PermanentActionError
from storeflow.model.events import new_id
from storeflow.store.base import StoreTx


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


@dataclass
class Applied:
    outbox_ids: dict[str, str] = field(default_factory=dict)  # idempotency key -> outbox id


def apply_effects(tx: StoreTx, effects: list[Effect], now: datetime) -> Applied:
    applied = Applied()
    for eff in effects:
        if isinstance(eff, Tag):
            _apply_tag(tx, eff, now)
        elif isinstance(eff, SetProperty):
            profile = tx.get_profile(eff.profile_id)
            if profile is None:
                raise PermanentActionError(f"profile {eff.profile_id} no longer exists")
            props = dict(profile["properties"] or {})
            if eff.increment is not None:
                props[eff.name] = _add(props.get(eff.name), eff.increment, eff.name)
            else:
                props[eff.name] = eff.value
            tx.update_profile(profile["id"], now, properties=props)
        elif isinstance(eff, ProductStatus):
            if not tx.set_product_fields(eff.product_id, now, status=eff.status):
                raise PermanentActionError(f"product {eff.product_id} does not exist")
        elif isinstance(eff, Send):
            msg_id = eff.message_id or new_id("msg")
            pending = eff.status == "pending"
            tx.enqueue({
                "id": msg_id, "run_id": eff.run_id, "step_key": eff.step_key, "channel": eff.channel,
                "idempotency_key": eff.idempotency_key, "payload": eff.payload, "status": eff.status,
                "attempts": 0, "next_attempt_at": now if pending else None, "created_at": now, "updated_at": now,
                "last_error": eff.reason, "kind": eff.kind, "address": eff.address, "profile_id": eff.profile_id,
                "flow_id": eff.flow_id, "flow_version": eff.flow_version, "segments": eff.segments,
            })
            applied.outbox_ids[eff.idempotency_key] = msg_id
        elif isinstance(eff, AddWait):
            tx.add_wait(eff.run_id, eff.profile_id, eff.event_type, eff.since)
        elif isinstance(eff, RemoveWait):
            tx.remove_wait(eff.run_id)
    return applied


def _add(current: Any, inc: Any, name: str) -> int | float:
    """Exact addition of JSON numbers; stored as an int when whole."""
    try:
        total = Decimal(str(current if current not in (None, "") else 0)) + Decimal(str(inc))
    except InvalidOperation as exc:
        raise PermanentActionError(f"property {name!r} holds {current!r}, which is not a number") from exc
    return int(total) if total == total.to_integral_value() else float(total)


def _apply_tag(tx: StoreTx, eff: Tag, now: datetime) -> None:
    if eff.target == "profile":
        row = tx.get_profile(eff.target_id)
    elif eff.target == "order":
        row = tx.get_order(eff.target_id)
    else:
        row = tx.get_product(eff.target_id)
    if row is None:
        raise PermanentActionError(f"{eff.target} {eff.target_id} does not exist")
    tags = [t for t in (row["tags"] or []) if t not in eff.remove]
    tags += [t for t in eff.add if t not in tags]
    if eff.target == "profile":
        tx.update_profile(row["id"], now, tags=tags)
    elif eff.target == "order":
        tx.update_order(row["id"], tags=tags, updated_at=now)
    else:
        tx.set_product_fields(row["id"], now, tags=tags)

"""Row builders for the per-port contract tests (tests/contract/test_port_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from storeflow.store.sql.profiles_ops import new_profile_row

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def profile_row(pid: str, **values: Any) -> dict[str, Any]:
    return new_profile_row(pid, T0, **values)


def event_row(key: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": f"evt_{key}", "type": "order_placed", "profile_id": None, "occurred_at": T0,
                           "received_at": T0, "source": "api", "idempotency_key": key, "properties": {}}
    row.update(values)
    return row


def flow_row(fid: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": fid, "name": fid.upper(), "status": "live", "current_version": 1,
                           "trigger_kind": "event", "trigger_event": "x", "created_at": T0, "updated_at": T0}
    row.update(values)
    return row


def run_row(rid: str, flow_id: str = "f", profile_id: str | None = "p", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": rid, "flow_id": flow_id, "flow_version": 1, "profile_id": profile_id,
                           "status": "active", "cursor": None, "due_at": T0, "active_key": None, "context": {},
                           "attempts": 0, "started_at": T0, "updated_at": T0}
    row.update(values)
    return row


def message_row(mid: str, run_id: str = "r", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": mid, "run_id": run_id, "step_key": mid, "channel": "email",
                           "idempotency_key": f"{run_id}:{mid}", "payload": {}, "status": "pending", "attempts": 0,
                           "next_attempt_at": T0, "created_at": T0, "updated_at": T0}
    row.update(values)
    return row


def order_row(oid: str, profile_id: str | None = "p", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": oid, "profile_id": profile_id, "status": "placed", "financial_status": "pending",
                           "fulfillment_status": "unfulfilled", "currency": "EUR", "total_minor": 1000,
                           "refunded_minor": 0, "tags": [], "line_items": [], "properties": {}, "placed_at": T0,
                           "updated_at": T0}
    row.update(values)
    return row


def cart_row(cid: str, profile_id: str | None = "p", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": cid, "profile_id": profile_id, "kind": "cart", "items": [],
                           "last_activity_at": T0, "created_at": T0}
    row.update(values)
    return row

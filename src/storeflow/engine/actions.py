"""Plan the effect of an action step. Channels later add their own planners to ``PLANNERS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from storeflow.engine.effects import Effect, ProductStatus, Send, SetProperty, Tag
from storeflow.errors import PermanentActionError


@dataclass(frozen=True)
class ActionContext:
    run_id: str
    flow_id: str
    flow_version: int
    step_key: str
    step_path: str
    idempotency_key: str
    profile_id: str | None
    record: dict[str, Any]
    now: datetime
    messaging: Any = None  # storeflow.engine.messaging.Messaging, for message actions


Planner = Callable[[BaseModel, ActionContext], tuple[list[Effect], dict[str, Any]]]


def _target_id(target: str, ctx: ActionContext) -> str:
    if target == "profile":
        if not ctx.profile_id:
            raise PermanentActionError("this run has no profile to tag")
        return ctx.profile_id
    rec = ctx.record.get(target)
    if not rec:
        raise PermanentActionError(f"this run has no {target} (the trigger event names none)")
    return str(rec["id"])


def _tag(params: Any, ctx: ActionContext, *, remove: bool) -> tuple[list[Effect], dict[str, Any]]:
    target = str(getattr(params, "target", "profile"))
    tid = _target_id(target, ctx)
    tags = tuple(params.tags)
    eff = Tag(target, tid, remove=tags) if remove else Tag(target, tid, add=tags)
    return [eff], {"target": target, "id": tid, ("removed" if remove else "added"): list(tags)}


def _set_property(params: Any, ctx: ActionContext) -> tuple[list[Effect], dict[str, Any]]:
    if not ctx.profile_id:
        raise PermanentActionError("this run has no profile to set a property on")
    inc = getattr(params, "increment", None)
    value = getattr(params, "value", None)
    return [SetProperty(ctx.profile_id, params.property, value=value, increment=inc)], {
        "property": params.property, **({"increment": inc} if inc is not None else {"value": value})}


def _product_status(params: Any, ctx: ActionContext, status: str) -> tuple[list[Effect], dict[str, Any]]:
    from storeflow.engine.paths import resolve_reference

    ref = getattr(params, "product", None)
    product_id = resolve_reference(ref, ctx.record) if ref else (ctx.record.get("product") or {}).get("id")
    if not product_id:
        product_id = ((ctx.record.get("event") or {}).get("properties") or {}).get("product_id")
    if not product_id:
        raise PermanentActionError("no product: the trigger event names none and the step gives no `product`")
    return [ProductStatus(str(product_id), status)], {"product_id": str(product_id), "status": status}


def _note(params: Any, ctx: ActionContext) -> tuple[list[Effect], dict[str, Any]]:
    return [], {"note": params.text}


def _webhook(params: Any, ctx: ActionContext) -> tuple[list[Effect], dict[str, Any]]:
    body = params.body
    if body is None:
        body = {
            "type": "storeflow.step",
            "flow": {"id": ctx.flow_id, "version": ctx.flow_version, "step": ctx.step_key},
            "run_id": ctx.run_id,
            "profile": ctx.record.get("profile"),
            "event": ctx.record.get("event"),
        }
    timeout = params.timeout.total_seconds() if hasattr(params.timeout, "total_seconds") else float(params.timeout)
    payload = {"url": str(params.url), "method": params.method, "headers": dict(params.headers or {}),
               "body": body, "timeout_s": timeout, "secret": params.secret}
    send = Send("webhook", ctx.idempotency_key, payload, ctx.run_id, ctx.step_key, kind="webhook",
                address=str(params.url).split("?", 1)[0], profile_id=ctx.profile_id, flow_id=ctx.flow_id,
                flow_version=ctx.flow_version)
    return [send], {"url": str(params.url), "message_key": ctx.idempotency_key}


PLANNERS: dict[str, Planner] = {
    "tag": lambda p, c: _tag(p, c, remove=False),
    "untag": lambda p, c: _tag(p, c, remove=True),
    "set_property": _set_property,
    "hide_product": lambda p, c: _product_status(p, c, "hidden"),
    "publish_product": lambda p, c: _product_status(p, c, "published"),
    "note": _note,
    "webhook": _webhook,
    "email": lambda p, c: _messaging().plan_email(p, c),
    "sms": lambda p, c: _messaging().plan_sms(p, c),
    "notify_team": lambda p, c: _messaging().plan_notify_team(p, c),
}


def _messaging() -> Any:
    from storeflow.engine import messaging

    return messaging


def plan_action(name: str, params: BaseModel, ctx: ActionContext) -> tuple[list[Effect], dict[str, Any]]:
    planner = PLANNERS.get(name)
    if planner is None:
        raise PermanentActionError(f"action {name!r} has no executor in this version")
    return planner(params, ctx)

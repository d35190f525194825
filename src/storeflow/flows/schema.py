"""A JSON Schema (draft 2020-12) of the flow document, for editors and ``storeflow flows schema``.

The schema checks the shape of a document. Some rules need code and are only checked by
``load_flow``: durations of 0, whole-day offsets, cron fields, time zone names, unique step ids and
variant names, near-miss event types.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from storeflow.flows.actions import ACTIONS, STEP_KEYS
from storeflow.flows.conditions import AGGREGATES, COMPARISON_OPS, NUMERIC_OPS, RECENCY_OPS, SOURCE_KEYS
from storeflow.flows.definition import FLOW_STATUSES, REQUIRED_KEYS
from storeflow.flows.durations import DURATION_PATTERN, SIGNED_DURATION_PATTERN
from storeflow.flows.layout import MAX_LAYOUT_DEPTH
from storeflow.flows.localtime import TIME_OF_DAY_PATTERN
from storeflow.flows.paths import FIELD_PATH_PATTERN
from storeflow.flows.vocabulary import WEEKDAYS

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _object(properties: dict[str, Any], required: list[str] | tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def _one_op(ops: tuple[str, ...] | list[str], value: dict[str, Any], **more: Any) -> dict[str, Any]:
    props: dict[str, Any] = dict.fromkeys(ops, value)
    props.update(more)
    return _object(props, list(more), minProperties=len(more) + 1, maxProperties=len(more) + 1)


def _condition_defs() -> dict[str, Any]:
    any_value: dict[str, Any] = {"not": {"type": "null"}}
    operands: dict[str, Any] = dict.fromkeys(COMPARISON_OPS, any_value)
    operands.update(
        {
            **{op: {"type": ["number", "string"]} for op in ("gt", "gte", "lt", "lte")},
            "in": {"type": "array", "minItems": 1, "items": _ref("scalar")},
            "not_in": {"type": "array", "minItems": 1, "items": _ref("scalar")},
            "contains": _ref("scalar"),
            "not_contains": _ref("scalar"),
            "starts_with": {"type": "string", "minLength": 1},
            "exists": {"type": "boolean"},
            "within": _ref("duration"),
            "older_than": _ref("duration"),
            "before": _ref("instant"),
            "after": _ref("instant"),
        }
    )
    operands["anniversary_within"] = _ref("duration")
    comparison = _object({"field": _ref("fieldPath"), **operands}, ["field"], minProperties=2, maxProperties=2)
    conditions = {"type": "array", "minItems": 1, "items": _ref("condition")}
    return {
        "condition": {
            "description": "all / any / not, a comparison {field, <op>}, a collection condition (history, orders, "
                           "carts, messages), in_segment, identity, purchase_overdue, rfm or top",
            "oneOf": [
                _object({"all": conditions}, ["all"]),
                _object({"any": conditions}, ["any"]),
                _object({"not": _ref("condition")}, ["not"]),
                comparison,
                *_collection_forms(),
                *_profile_forms(),
            ],
        },
    }


def _collection_forms() -> list[dict[str, Any]]:
    """``{history|orders|carts|messages: {<window>, where, ...}, <aggregate>}`` (see docs/segments.md)."""
    number = {"type": ["number", "string"]}
    window = {
        "within": _ref("duration"),
        "since": {"anyOf": [{"enum": ["first_order", "flow_start", "trigger"]}, _ref("instant")]},
        "before": {"anyOf": [_ref("instant"), _ref("duration")]},
        "between": {"type": "array", "minItems": 2, "maxItems": 2, "items": _ref("instant")},
    }
    one_window = {"not": {"anyOf": [{"required": [a, b]} for i, a in enumerate(window) for b in list(window)[i + 1:]]}}
    of = {"type": "string", "minLength": 1}
    seen = _object(
        {**dict.fromkeys(RECENCY_OPS, _ref("duration")), "before": _ref("instant"), "after": _ref("instant")},
        minProperties=1, maxProperties=1,
    )
    aggregates = {
        "count": _one_op(NUMERIC_OPS, {"type": "integer", "minimum": 0}),
        "exists": {"type": "boolean"},
        **{kind: _one_op(NUMERIC_OPS, number, of=of) for kind in ("sum", "min", "max", "avg")},
        "first_seen": seen,
        "last_seen": seen,
    }
    assert set(aggregates) == set(AGGREGATES)
    extra: dict[str, tuple[dict[str, Any], list[str]]] = {
        "history": ({"event": _ref("eventType")}, ["event"]),
        "orders": ({}, []),
        "carts": ({}, []),
        "messages": ({"channel": {"type": "string", "minLength": 1, "maxLength": 32}}, []),
    }
    assert set(extra) == set(SOURCE_KEYS)
    forms = []
    for key, (props, required) in extra.items():
        spec = _object({**props, **window, "where": _ref("condition")}, required, **one_window)
        forms.append(_object({key: spec, **aggregates}, [key], minProperties=2, maxProperties=2))
    return forms


def _profile_forms() -> list[dict[str, Any]]:
    score = _one_op(NUMERIC_OPS, {"type": "integer", "minimum": 1, "maximum": 5})
    return [
        _object({"in_segment": _ref("slug")}, ["in_segment"]),
        _object({"identity": _ref("slug")}, ["identity"]),
        _object(
            {"purchase_overdue": _object(
                {"factor": {"type": ["number", "string"]}, "default": _ref("duration")}, ["factor", "default"])},
            ["purchase_overdue"],
        ),
        _object(
            {"rfm": _object(dict.fromkeys(("recency", "frequency", "monetary"), score), minProperties=1)},
            ["rfm"],
        ),
        _object(
            {"top": _object(
                {"metric": {"enum": ["monetary", "frequency"]}, "percent": {"type": "integer", "minimum": 1,
                                                                           "maximum": 99}},
                ["metric", "percent"],
            )},
            ["top"],
        ),
    ]


def _trigger_def() -> dict[str, Any]:
    return {
        "oneOf": [
            _object(
                {"event": _ref("eventType"), "filter": _ref("condition"), "max_age": _ref("duration")},
                ["event"],
            ),
            _object({"schedule": {"type": "string", "minLength": 1}, "timezone": {"type": "string"}}, ["schedule"]),
            _object(
                {
                    "date": {"type": "string", "pattern": r"^profile(\.[^\s.\[\]]+)+$"},
                    "offset": {"type": "string", "pattern": SIGNED_DURATION_PATTERN},
                    "at": _ref("timeOfDay"),
                    "repeat": {"enum": ["yearly", "once"]},
                },
                ["date"],
            ),
            _object(
                {
                    "segment": _ref("slug"),
                    "on": {"enum": ["entered", "exited"]},
                    "include_existing": {"type": "boolean"},
                },
                ["segment"],
            ),
        ]
    }


def _layout_def() -> dict[str, Any]:
    """Editor metadata: any JSON mapping; ``nodes`` maps step ids to positions (flows/layout.py)."""
    number = {"type": "number"}
    node = {"type": "object", "properties": {"x": number, "y": number}}
    return {
        "description": f"editor metadata (node positions by step id); never read by the engine, not part of "
                       f"the digest; at most {MAX_LAYOUT_DEPTH} levels deep",
        "type": "object",
        "properties": {
            "nodes": {"type": "object", "propertyNames": _ref("slug"), "additionalProperties": node},
        },
    }


def _step_defs(defs: dict[str, Any]) -> dict[str, Any]:
    step_id = {**_ref("slug"), "description": "the step's id, unique in the flow; generated when missing"}
    common = {"id": step_id, "name": {"type": "string", "minLength": 1}}
    branch = {"anyOf": [_ref("steps"), {"type": "null"}]}
    wait_until = _object(
        {
            "time": _ref("timeOfDay"),
            "days": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(WEEKDAYS)}},
            "at": _ref("instant"),
            "timezone": {"type": "string", "minLength": 1},
        },
        oneOf=[{"required": ["time"]}, {"required": ["at"], "not": {"required": ["days"]}}],
    )
    variant = _object(
        {
            "name": {"type": "string", "minLength": 1},
            "weight": {"type": "integer", "minimum": 1},
            "steps": branch,
        },
        ["name", "weight"],
    )
    forms = [
        _object({**common, "wait": _ref("duration")}, ["wait"]),
        _object({**common, "wait_until": wait_until}, ["wait_until"]),
        _object(
            {
                **common,
                "wait_for": _object(
                    {"event": _ref("eventType"), "timeout": _ref("duration"), "where": _ref("condition")},
                    ["event", "timeout"],
                ),
                "on_event": branch,
                "on_timeout": branch,
            },
            ["wait_for"],
        ),
        _object({**common, "if": _ref("condition"), "then": branch, "else": branch}, ["if", "then"]),
        _object({**common, "split": {"type": "array", "minItems": 2, "items": variant}}, ["split"]),
        _object({**common, "exit": {"anyOf": [{"type": "string", "minLength": 1}, {"const": True}]}}, ["exit"]),
        _action_step(common, defs),
    ]
    return {
        "steps": {"type": "array", "items": _ref("step")},
        "step": {
            "description": "a step: action, wait, wait_until, wait_for, if, split or exit",
            "oneOf": forms,
        },
    }


def _action_step(common: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    names = sorted(ACTIONS)
    rules: list[dict[str, Any]] = []
    for name in names:
        params = copy.deepcopy(ACTIONS[name].model_json_schema(ref_template="#/$defs/{model}"))
        for key, value in params.pop("$defs", {}).items():
            defs.setdefault(key, value)
        params.pop("title", None)
        params.pop("description", None)
        properties = params.setdefault("properties", {})
        for prop in properties.values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        properties.update({**common, "action": {"const": name}})
        params["additionalProperties"] = False
        rules.append({"if": {"properties": {"action": {"const": name}}, "required": ["action"]}, "then": params})
    return {
        "type": "object",
        "required": ["action"],
        "properties": {"action": {"enum": names}},
        "allOf": rules,
    }


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema of a flow document (draft 2020-12), including the registered actions."""
    defs: dict[str, Any] = {
        "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
        "duration": {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "a duration: 30s, 15m, 1h, 2d, 1w or combined like 1h30m",
        },
        "fieldPath": {"type": "string", "pattern": FIELD_PATH_PATTERN},
        "eventType": {"type": "string", "minLength": 1},
        "timeOfDay": {"type": "string", "pattern": TIME_OF_DAY_PATTERN},
        "instant": {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}",
            "description": "ISO 8601 date or date-time",
        },
        "scalar": {"type": ["string", "number", "boolean"]},
        "trigger": _trigger_def(),
        "reentry": {
            "oneOf": [{"enum": ["once", "always"]}, _object({"every": _ref("duration")}, ["every"])],
        },
    }
    defs.update(_condition_defs())
    defs.update(_step_defs(defs))
    assert not STEP_KEYS - {"action", "id", "name"}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "storeflow flow",
        "description": "A storeflow flow definition (see docs/flows.md).",
        "type": "object",
        "required": list(REQUIRED_KEYS),
        "properties": {
            "id": _ref("slug"),
            "name": {"type": "string", "minLength": 1},
            "description": {"type": ["string", "null"]},
            "status": {"enum": list(FLOW_STATUSES)},
            "trigger": _ref("trigger"),
            "exit_when": _ref("condition"),
            "reentry": _ref("reentry"),
            "steps": {"type": "array", "minItems": 1, "items": _ref("step")},
            "layout": _layout_def(),
        },
        "additionalProperties": False,
        "$defs": defs,
    }

"""Parsing condition documents into the condition AST (see conditions.py), collecting every problem."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from storeflow.errors import FlowValidationError
from storeflow.flows.conditions import COMPARISON_OPS, SOURCE_KEYS, AllOf, AnyOf, Comparison, Condition, Not
from storeflow.flows.durations import read_duration
from storeflow.flows.paths import read_field_path
from storeflow.flows.problems import Loc, Problems, parse_loc, type_name, want_list, want_mapping
from storeflow.flows.record_schema import checked_type, operator_problem
from storeflow.flows.values import as_datetime, as_decimal, is_number, parse_iso_datetime, to_json_value
from storeflow.flows.vocabulary import FIELD_ROOTS, did_you_mean, event_type_hint

_OPS_HINT = "operators: " + ", ".join(COMPARISON_OPS)
_PROFILE_NODES = ("in_segment", "identity", "purchase_overdue", "rfm", "top")
_CONDITION_KEYS = ("all", "any", "not", "field", *SOURCE_KEYS, *_PROFILE_NODES)
_CONDITION_HINT = "a condition has one of: " + ", ".join(_CONDITION_KEYS)


def parse_condition(data: Any, path: str = "") -> Condition:
    """Parse a condition document. Raises FlowValidationError listing every problem.

    ``path`` is the document path of ``data`` (e.g. ``"trigger.filter"``), used in problem paths.
    """
    problems = Problems()
    result = read_condition(data, parse_loc(path) if path else (), problems)
    if problems or result is None:
        raise FlowValidationError(problems.to_problems())
    return result


def read_condition(data: Any, loc: Loc, problems: Problems, *, item_root: str | None = None) -> Condition | None:
    """A condition from a document, or None after adding its problems to ``problems``.

    ``item_root`` is set inside a collection's ``where`` (``event``, ``order``, ``cart`` or
    ``message``): paths must start with it, and only comparisons and all / any / not are allowed
    there (no nested collections, no profile conditions such as in_segment).
    """
    mapping = want_mapping(data, loc, problems, "a condition (a mapping)")
    if mapping is None:
        return None
    logic = [key for key in ("all", "any", "not") if key in mapping]
    if logic:
        if len(mapping) > 1:
            others = ", ".join(str(key) for key in mapping if key != logic[0])
            problems.add(
                loc,
                f'a condition with "{logic[0]}" takes no other keys (found {others})',
                "nest conditions instead, e.g. {all: [{field: ...}, {any: [...]}]}",
            )
        return _read_logic(logic[0], mapping[logic[0]], (*loc, logic[0]), problems, item_root)
    if "field" in mapping:
        return _read_comparison(mapping, loc, problems, item_root)
    node = next((key for key in mapping if key in SOURCE_KEYS or key in _PROFILE_NODES), None)
    if node is not None:
        if item_root is not None:
            nested = f"{node} conditions cannot be nested"
            problems.add(loc, nested if node in SOURCE_KEYS else f'{node} cannot be used in "where"')
            return None
        from storeflow.flows import collection_parser  # it imports this module

        if node in SOURCE_KEYS:
            return collection_parser.read_collection(node, mapping, loc, problems)
        return collection_parser.read_profile_node(node, mapping, loc, problems)
    ops = [key for key in mapping if key in COMPARISON_OPS]
    if ops:
        problems.add(loc, f'the comparison with "{ops[0]}" has no "field"', "e.g. {field: profile.country, eq: US}")
        return None
    for key in mapping:
        hint = did_you_mean(str(key), _CONDITION_KEYS) or _CONDITION_HINT
        problems.add((*loc, str(key)), f'unknown key "{key}"', hint)
    if not mapping:
        problems.add(loc, "an empty mapping is not a condition", _CONDITION_HINT)
    return None


def _read_logic(kind: str, data: Any, loc: Loc, problems: Problems, item_root: str | None) -> Condition | None:
    if kind == "not":
        inner = read_condition(data, loc, problems, item_root=item_root)
        return Not(condition=inner) if inner is not None else None
    items = want_list(data, loc, problems, "a list of conditions")
    if items is None:
        return None
    if not items:
        problems.add(loc, f'"{kind}" needs at least one condition')
        return None
    parsed = [read_condition(item, (*loc, i), problems, item_root=item_root) for i, item in enumerate(items)]
    if any(item is None for item in parsed):
        return None
    conditions = tuple(item for item in parsed if item is not None)
    return AllOf(conditions=conditions) if kind == "all" else AnyOf(conditions=conditions)


def _read_comparison(data: Mapping[str, Any], loc: Loc, problems: Problems, item_root: str | None) -> Comparison | None:
    roots = (item_root,) if item_root is not None else FIELD_ROOTS
    path = read_field_path(data["field"], (*loc, "field"), problems, roots)
    ftype = checked_type(path, (*loc, "field"), problems) if path is not None else None
    ops: list[str] = []
    for key in data:
        if key == "field":
            continue
        if key in COMPARISON_OPS:
            ops.append(key)
        else:
            hint = did_you_mean(str(key), COMPARISON_OPS) or _OPS_HINT
            problems.add((*loc, str(key)), f'unknown operator "{key}"', hint)
    if not ops:
        if len(data) == 1:
            problems.add(loc, "the comparison has no operator", _OPS_HINT)
        return None
    if len(ops) > 1:
        problems.add(
            loc,
            f"the comparison has {len(ops)} operators ({', '.join(ops)}); use exactly one",
            "combine comparisons with all: [...]",
        )
        return None
    op = ops[0]
    value = _read_operand(op, data[op], (*loc, op), problems)
    if path is None or ftype is None or value is None:
        return None
    misfit = operator_problem(ftype, op, value, str(path))
    if misfit is not None:
        problems.add((*loc, op), *misfit)
        return None
    return Comparison(path=path, op=op, value=value)


def _read_operand(op: str, value: Any, loc: Loc, problems: Problems) -> Any:
    """The normalized operand of ``op``, or None after adding a problem."""
    if op == "exists":
        if isinstance(value, bool):
            return value
        problems.add(loc, f"must be true or false, not {type_name(value)}")
        return None
    if op in ("within", "older_than"):
        return read_duration(value, loc, problems)
    if op == "anniversary_within":
        days = read_duration(value, loc, problems)
        if days is not None and days % timedelta(days=1):
            problems.add(loc, f'"{value}" is not a whole number of days', "e.g. 7d: today and the next 6 days")
            return None
        return days
    if op in ("before", "after"):
        return read_instant(value, loc, problems)
    if value is None:
        hint = "use exists: false to test for a missing value" if op in ("eq", "ne") else None
        problems.add(loc, "must not be null", hint)
        return None
    try:
        value = to_json_value(value)
    except ValueError:
        problems.add(loc, f"must be text, a number, true/false, a list or a mapping, not {type_name(value)}")
        return None
    if op in ("in", "not_in"):
        items = want_list(value, loc, problems, "a list of values")
        if items is None:
            return None
        if not items:
            problems.add(loc, "must not be empty")
            return None
        bad = [i for i, item in enumerate(items) if not _is_scalar(item)]
        for i in bad:
            problems.add((*loc, i), f"must be text, a number or true/false, not {type_name(items[i])}")
        return None if bad else tuple(items)
    if op in ("gt", "gte", "lt", "lte"):
        if (is_number(value) or isinstance(value, str)) and (
            as_decimal(value) is not None or as_datetime(value) is not None
        ):
            return value
        problems.add(
            loc,
            f"must be a number or a date-time, not {type_name(value)}",
            "e.g. 100 or 2026-01-31T00:00:00Z",
        )
        return None
    if op == "starts_with":
        if isinstance(value, str) and value:
            return value
        problems.add(loc, f"must be non-empty text, not {type_name(value)}")
        return None
    if op in ("contains", "not_contains") and not _is_scalar(value):
        problems.add(loc, f"must be text, a number or true/false, not {type_name(value)}")
        return None
    return value


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or is_number(value)


def read_instant(value: Any, loc: Loc, problems: Problems) -> datetime | None:
    """An aware UTC instant from ISO 8601 text (or a date from a YAML loader), else None after the problem."""
    if isinstance(value, date):  # from a YAML loader that makes dates
        return as_datetime(value)
    parsed = parse_iso_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        shown = f'"{value}"' if isinstance(value, str) else type_name(value)
        problems.add(loc, f"{shown} is not a date-time", "use ISO 8601, e.g. 2026-01-31 or 2026-01-31T09:00:00Z")
        return None
    return as_datetime(parsed)


def read_event_type(value: Any, loc: Loc, problems: Problems) -> str | None:
    """An event type name; a near miss of a known type is a problem with a "did you mean" hint."""
    if not isinstance(value, str) or not value.strip():
        problems.add(loc, f"must be an event type name, not {type_name(value)}", 'e.g. "order_placed"')
        return None
    hint = event_type_hint(value)
    if hint is not None:
        problems.add(loc, f'unknown event type "{value}"', hint)
        return None
    return value

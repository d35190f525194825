"""Parsing condition documents into the condition AST (see conditions.py), collecting every problem."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from storeflow.errors import FlowValidationError
from storeflow.flows.conditions import (
    AGGREGATES,
    COMPARISON_OPS,
    NUMERIC_OPS,
    RECENCY_OPS,
    Aggregate,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    CountAggregate,
    ExistsAggregate,
    History,
    HistoryWindow,
    LastSeenAggregate,
    Not,
    SumAggregate,
)
from storeflow.flows.durations import read_duration
from storeflow.flows.paths import FieldPath, read_field_path
from storeflow.flows.problems import Loc, Problems, check_keys, parse_loc, type_name, want_list, want_mapping
from storeflow.flows.record_schema import checked_type, operator_problem
from storeflow.flows.values import as_datetime, as_decimal, is_number, parse_iso_datetime, to_json_value
from storeflow.flows.vocabulary import FIELD_ROOTS, did_you_mean, event_type_hint

_OPS_HINT = "operators: " + ", ".join(COMPARISON_OPS)
_CONDITION_HINT = "a condition has one of: all, any, not, field, history"


def parse_condition(data: Any, path: str = "") -> Condition:
    """Parse a condition document. Raises FlowValidationError listing every problem.

    ``path`` is the document path of ``data`` (e.g. ``"trigger.filter"``), used in problem paths.
    """
    problems = Problems()
    result = read_condition(data, parse_loc(path) if path else (), problems)
    if problems or result is None:
        raise FlowValidationError(problems.to_problems())
    return result


def read_condition(data: Any, loc: Loc, problems: Problems, *, in_history: bool = False) -> Condition | None:
    """A condition from a document, or None after adding its problems to ``problems``.

    ``in_history`` is set inside ``history.where``: paths must start with ``event`` and history
    conditions cannot nest.
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
        return _read_logic(logic[0], mapping[logic[0]], (*loc, logic[0]), problems, in_history)
    if "history" in mapping:
        if in_history:
            problems.add(loc, "history conditions cannot be nested")
            return None
        return _read_history(mapping, loc, problems)
    if "field" in mapping:
        return _read_comparison(mapping, loc, problems, in_history)
    ops = [key for key in mapping if key in COMPARISON_OPS]
    if ops:
        problems.add(loc, f'the comparison with "{ops[0]}" has no "field"', "e.g. {field: profile.country, eq: US}")
        return None
    known = ("all", "any", "not", "field", "history")
    for key in mapping:
        hint = did_you_mean(str(key), known) or _CONDITION_HINT
        problems.add((*loc, str(key)), f'unknown key "{key}"', hint)
    if not mapping:
        problems.add(loc, "an empty mapping is not a condition", _CONDITION_HINT)
    return None


def _read_logic(kind: str, data: Any, loc: Loc, problems: Problems, in_history: bool) -> Condition | None:
    if kind == "not":
        inner = read_condition(data, loc, problems, in_history=in_history)
        return Not(condition=inner) if inner is not None else None
    items = want_list(data, loc, problems, "a list of conditions")
    if items is None:
        return None
    if not items:
        problems.add(loc, f'"{kind}" needs at least one condition')
        return None
    parsed = [read_condition(item, (*loc, i), problems, in_history=in_history) for i, item in enumerate(items)]
    if any(item is None for item in parsed):
        return None
    conditions = tuple(item for item in parsed if item is not None)
    return AllOf(conditions=conditions) if kind == "all" else AnyOf(conditions=conditions)


def _read_comparison(data: Mapping[str, Any], loc: Loc, problems: Problems, in_history: bool) -> Comparison | None:
    roots = ("event",) if in_history else FIELD_ROOTS
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
    if op in ("before", "after"):
        instant = _read_instant(value, loc, problems)
        return instant
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


def _read_instant(value: Any, loc: Loc, problems: Problems) -> datetime | None:
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


def _read_history(data: Mapping[str, Any], loc: Loc, problems: Problems) -> History | None:
    aggregates = [key for key in data if key in AGGREGATES]
    for key in data:
        if key != "history" and key not in AGGREGATES:
            hint = did_you_mean(str(key), AGGREGATES) or "aggregates: " + ", ".join(AGGREGATES)
            problems.add((*loc, str(key)), f'unknown key "{key}"', hint)
    spec = want_mapping(data["history"], (*loc, "history"), problems)
    event: str | None = None
    window: HistoryWindow | None = HistoryWindow()
    where: Condition | None = None
    ok = spec is not None
    if spec is not None:
        hloc = (*loc, "history")
        ok = check_keys(spec, hloc, problems, ("event", "within", "since", "where"), ("event",))
        if "event" in spec:
            event = read_event_type(spec["event"], (*hloc, "event"), problems)
        window = _read_window(spec, hloc, problems)
        if "where" in spec:
            where = read_condition(spec["where"], (*hloc, "where"), problems, in_history=True)
            ok = ok and where is not None
    if not aggregates:
        problems.add(loc, "the history condition has no aggregate", "add one of: " + ", ".join(AGGREGATES))
        return None
    if len(aggregates) > 1:
        problems.add(loc, f"the history condition has {len(aggregates)} aggregates ({', '.join(aggregates)}); use one")
        return None
    aggregate = _read_aggregate(aggregates[0], data[aggregates[0]], (*loc, aggregates[0]), problems)
    if not ok or event is None or window is None or aggregate is None:
        return None
    return History(event=event, window=window, where=where, aggregate=aggregate)


def _read_window(spec: Mapping[str, Any], loc: Loc, problems: Problems) -> HistoryWindow | None:
    if "within" in spec and "since" in spec:
        problems.add(loc, 'use either "within" or "since", not both')
        return None
    if "within" in spec:
        within = read_duration(spec["within"], (*loc, "within"), problems)
        return HistoryWindow(within=within) if within is not None else None
    if "since" in spec:
        since = spec["since"]
        if since in ("flow_start", "trigger"):
            return HistoryWindow(since=since)
        if isinstance(since, date) or (isinstance(since, str) and parse_iso_datetime(since) is not None):
            return HistoryWindow(since=_read_instant(since, (*loc, "since"), problems))
        problems.add(
            (*loc, "since"),
            f'"{since}" is not a start' if isinstance(since, str) else f"must be text, not {type_name(since)}",
            "use flow_start, trigger or an ISO date-time such as 2026-01-01T00:00:00Z",
        )
        return None
    return HistoryWindow()


def _read_aggregate(kind: str, data: Any, loc: Loc, problems: Problems) -> Aggregate | None:
    if kind == "exists":
        if isinstance(data, bool):
            return ExistsAggregate(value=data)
        problems.add(loc, f"must be true or false, not {type_name(data)}")
        return None
    spec = want_mapping(data, loc, problems)
    if spec is None:
        return None
    if kind == "last_seen":
        ops = [key for key in spec if key in RECENCY_OPS]
        check_keys(spec, loc, problems, RECENCY_OPS)
        if len(ops) != 1:
            problems.add(loc, "last_seen needs exactly one of within, older_than", "e.g. {older_than: 7d}")
            return None
        period = read_duration(spec[ops[0]], (*loc, ops[0]), problems)
        return LastSeenAggregate(op=ops[0], period=period) if period is not None else None
    allowed = ("of", *NUMERIC_OPS) if kind == "sum" else NUMERIC_OPS
    check_keys(spec, loc, problems, allowed, ("of",) if kind == "sum" else ())
    ops = [key for key in spec if key in NUMERIC_OPS]
    if len(ops) != 1:
        example = "{of: total, gte: 500}" if kind == "sum" else "{gte: 1}"
        problems.add(loc, f"{kind} needs exactly one of {', '.join(NUMERIC_OPS)}", f"e.g. {example}")
        return None
    op, raw = ops[0], spec[ops[0]]
    if kind == "count":
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            return CountAggregate(op=op, value=raw)
        problems.add((*loc, op), f"must be a whole number of 0 or more, not {type_name(raw)}")
        return None
    amount = as_decimal(raw) if is_number(raw) or isinstance(raw, str) else None
    if amount is None:
        problems.add((*loc, op), f"must be a number, not {type_name(raw)}")
    of = _read_sum_of(spec["of"], (*loc, "of"), problems) if "of" in spec else None
    if amount is None or of is None:
        return None
    return SumAggregate(of=of, op=op, value=amount)


def _read_sum_of(value: Any, loc: Loc, problems: Problems) -> FieldPath | None:
    """``of: total`` names a property of the historic event; ``of: event.total`` is the same."""
    if isinstance(value, str) and value and not value.startswith("event."):
        value = f"event.{value}"
    path = read_field_path(value, loc, problems, ("event",))
    ftype = checked_type(path, loc, problems) if path is not None else None
    if ftype is None:
        return None
    if ftype.kind not in ("integer", "decimal", "number", "any"):
        problems.add(loc, f"{path} is {ftype.describe()}, not a number", "e.g. of: total")
        return None
    return path

"""Parsing the collection and profile conditions (see conditions.py), collecting every problem.

``{history|orders|carts|messages: {...}, <aggregate>}`` become :class:`History` nodes; ``in_segment``,
``identity``, ``purchase_overdue``, ``rfm`` and ``top`` their own nodes. ``condition_parser`` calls
:func:`read_collection` and :func:`read_profile_node`; plain comparisons and all / any / not are its.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from storeflow.flows.condition_parser import read_condition, read_event_type, read_instant
from storeflow.flows.conditions import (
    AGGREGATES,
    NUMERIC_OPS,
    RECENCY_OPS,
    SEEN_OPS,
    SOURCE_KEYS,
    SOURCE_ROOTS,
    Aggregate,
    Condition,
    CountAggregate,
    ExistsAggregate,
    FirstSeenAggregate,
    HasIdentity,
    History,
    HistoryWindow,
    InSegment,
    LastSeenAggregate,
    PurchaseOverdue,
    Rfm,
    RfmScore,
    SumAggregate,
    TopPercent,
    ValueAggregate,
)
from storeflow.flows.durations import read_duration
from storeflow.flows.paths import FieldPath, read_field_path
from storeflow.flows.problems import Loc, Problems, check_keys, type_name, want_mapping, want_slug, want_text
from storeflow.flows.record_schema import checked_type
from storeflow.flows.values import as_decimal, is_number, parse_iso_datetime
from storeflow.flows.vocabulary import suggest

COLLECTION_KEYS: Final[tuple[str, ...]] = tuple(SOURCE_KEYS)
"""``history``, ``orders``, ``carts``, ``messages``."""
PROFILE_NODE_KEYS: Final[tuple[str, ...]] = ("in_segment", "identity", "purchase_overdue", "rfm", "top")
WINDOW_KEYS: Final[tuple[str, ...]] = ("within", "since", "before", "between")
KNOWN_CHANNELS: Final[tuple[str, ...]] = ("email", "sms", "push", "webhook")
KNOWN_IDENTITIES: Final[tuple[str, ...]] = ("email", "phone", "customer_id", "anonymous_id")
_SINCE_ANCHORS: Final = ("first_order", "flow_start", "trigger")
_WINDOW_HINT: Final = "one of within: 30d, since: 2026-01-01, before: 90d, between: [2026-01-01, 2026-02-01]"
_SPEC_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "history": ("event", *WINDOW_KEYS, "where"),
    "orders": (*WINDOW_KEYS, "where"),
    "carts": (*WINDOW_KEYS, "where"),
    "messages": ("channel", *WINDOW_KEYS, "where"),
}


def read_collection(key: str, data: Mapping[str, Any], loc: Loc, problems: Problems) -> History | None:
    """``{<key>: {...}, <aggregate>}`` (key: history, orders, carts or messages) as a History node."""
    source = SOURCE_KEYS[key]
    root = SOURCE_ROOTS[source]
    aggregates = [k for k in data if k in AGGREGATES]
    for other in data:
        if other != key and other not in AGGREGATES:
            hint = _near(str(other), AGGREGATES) or "aggregates: " + ", ".join(AGGREGATES)
            problems.add((*loc, str(other)), f'unknown key "{other}"', hint)
    sloc = (*loc, key)
    spec = want_mapping(data[key], sloc, problems, "a mapping (the items to aggregate)")
    event: str | None = None
    channel: str | None = None
    window: HistoryWindow | None = HistoryWindow()
    where: Condition | None = None
    ok = spec is not None
    if spec is not None:
        ok = check_keys(spec, sloc, problems, _SPEC_KEYS[key], ("event",) if key == "history" else ())
        if "event" in spec:
            event = read_event_type(spec["event"], (*sloc, "event"), problems)
            ok = ok and event is not None
        if "channel" in spec:
            channel = _read_channel(spec["channel"], (*sloc, "channel"), problems)
            ok = ok and channel is not None
        window = read_window(spec, sloc, problems)
        if "where" in spec:
            where = read_condition(spec["where"], (*sloc, "where"), problems, item_root=root)
            ok = ok and where is not None
    if not aggregates:
        problems.add(loc, f"the {key} condition has no aggregate", "add one of: " + ", ".join(AGGREGATES))
        return None
    if len(aggregates) > 1:
        problems.add(loc, f"the {key} condition has {len(aggregates)} aggregates ({', '.join(aggregates)}); use one")
        return None
    kind = aggregates[0]
    aggregate = read_aggregate(kind, data[kind], (*loc, kind), problems, root)
    if not ok or window is None or aggregate is None:
        return None
    return History(source=source, event=event, channel=channel, window=window, where=where, aggregate=aggregate)


def _near(word: str, options: tuple[str, ...]) -> str | None:
    match = suggest(word, options)
    return f'did you mean "{match}"?' if match else None


def _read_channel(value: Any, loc: Loc, problems: Problems) -> str | None:
    text = want_text(value, loc, problems, "a channel name (text)")
    if text is None:
        return None
    if text not in KNOWN_CHANNELS:
        near = suggest(text, KNOWN_CHANNELS, cutoff=0.6)
        if near is not None:
            problems.add(loc, f'unknown channel "{text}"', f'did you mean "{near}"?')
            return None
    if len(text) > 32:
        problems.add(loc, "is too long (at most 32 characters)")
        return None
    return text


# --- windows ---------------------------------------------------------------------------------


def read_window(spec: Mapping[str, Any], loc: Loc, problems: Problems) -> HistoryWindow | None:
    """The time window of a collection spec (at most one of within, since, before, between)."""
    given = [key for key in WINDOW_KEYS if key in spec]
    if len(given) == 2:
        problems.add(loc, f'use either "{given[0]}" or "{given[1]}", not both')
        return None
    if len(given) > 2:
        problems.add(loc, f"use one time window, not {', '.join(given)}", _WINDOW_HINT)
        return None
    if not given:
        return HistoryWindow()
    key = given[0]
    value, wloc = spec[key], (*loc, key)
    if key == "within":
        within = read_duration(value, wloc, problems)
        return HistoryWindow(within=within) if within is not None else None
    if key == "since":
        return _read_since(value, wloc, problems)
    if key == "before":
        if _looks_like_instant(value):
            at = read_instant(value, wloc, problems)
            return HistoryWindow(before=at) if at is not None else None
        ago = read_duration(value, wloc, problems)
        return HistoryWindow(before=ago) if ago is not None else None
    return _read_between(value, wloc, problems)


def _looks_like_instant(value: Any) -> bool:
    return isinstance(value, date) or (isinstance(value, str) and parse_iso_datetime(value) is not None)


def _read_since(value: Any, loc: Loc, problems: Problems) -> HistoryWindow | None:
    if value in _SINCE_ANCHORS:
        return HistoryWindow(since=value)
    if _looks_like_instant(value):
        at = read_instant(value, loc, problems)
        return HistoryWindow(since=at) if at is not None else None
    problems.add(
        loc,
        f'"{value}" is not a start' if isinstance(value, str) else f"must be text, not {type_name(value)}",
        "use first_order, flow_start, trigger or an ISO date-time such as 2026-01-01T00:00:00Z",
    )
    return None


def _read_between(value: Any, loc: Loc, problems: Problems) -> HistoryWindow | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        problems.add(loc, f"must be a list of two date-times, not {type_name(value)}", "e.g. [2026-01-01, 2026-02-01]")
        return None
    first, second = (read_instant(item, (*loc, i), problems) for i, item in enumerate(value))
    if first is None or second is None:
        return None
    if first > second:
        problems.add(loc, "the first date-time is after the second", "write the earlier one first")
        return None
    return HistoryWindow(between=(first, second))


# --- aggregates ------------------------------------------------------------------------------


def read_aggregate(kind: str, data: Any, loc: Loc, problems: Problems, root: str) -> Aggregate | None:
    """One aggregate (``kind`` is its key); ``root`` is the collection's record (``of`` reads it)."""
    if kind == "exists":
        if isinstance(data, bool):
            return ExistsAggregate(value=data)
        problems.add(loc, f"must be true or false, not {type_name(data)}")
        return None
    spec = want_mapping(data, loc, problems)
    if spec is None:
        return None
    if kind in ("first_seen", "last_seen"):
        return _read_seen(kind, spec, loc, problems)
    has_of = kind in ("sum", "min", "max", "avg")
    check_keys(spec, loc, problems, ("of", *NUMERIC_OPS) if has_of else NUMERIC_OPS, ("of",) if has_of else ())
    ops = [key for key in spec if key in NUMERIC_OPS]
    of = read_of(spec["of"], (*loc, "of"), problems, root) if has_of and "of" in spec else None
    if len(ops) != 1:
        example = "{of: total, gte: 500}" if has_of else "{gte: 1}"
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
    if amount is None or of is None:
        return None
    if kind == "sum":
        return SumAggregate(of=of, op=op, value=amount)
    return ValueAggregate(kind=kind, of=of, op=op, value=amount)


def _read_seen(
    kind: str, spec: Mapping[str, Any], loc: Loc, problems: Problems
) -> FirstSeenAggregate | LastSeenAggregate | None:
    check_keys(spec, loc, problems, SEEN_OPS)
    ops = [key for key in spec if key in SEEN_OPS]
    if len(ops) != 1:
        problems.add(loc, f"{kind} needs exactly one of {', '.join(SEEN_OPS)}", "e.g. {older_than: 7d}")
        return None
    op = ops[0]
    period: timedelta | None = None
    at: datetime | None = None
    if op in RECENCY_OPS:
        period = read_duration(spec[op], (*loc, op), problems)
        if period is None:
            return None
    else:
        at = read_instant(spec[op], (*loc, op), problems)
        if at is None:
            return None
    if kind == "first_seen":
        return FirstSeenAggregate(op=op, period=period, at=at)
    return LastSeenAggregate(op=op, period=period, at=at)


def read_of(value: Any, loc: Loc, problems: Problems, root: str) -> FieldPath | None:
    """``of: total`` names a field of the collection's record; ``of: order.total`` is the same."""
    if isinstance(value, str) and value and not value.startswith(f"{root}."):
        value = f"{root}.{value}"
    path = read_field_path(value, loc, problems, (root,))
    ftype = checked_type(path, loc, problems) if path is not None else None
    if path is None or ftype is None:
        return None
    if ftype.kind not in ("integer", "decimal", "number", "any"):
        problems.add(loc, f"{path} is {ftype.describe()}, not a number", "e.g. of: total")
        return None
    return path


# --- profile nodes ---------------------------------------------------------------------------


def read_profile_node(
    key: str, data: Mapping[str, Any], loc: Loc, problems: Problems
) -> InSegment | HasIdentity | PurchaseOverdue | Rfm | TopPercent | None:
    """``{in_segment: ...}``, ``{identity: ...}``, ``{purchase_overdue: ...}``, ``{rfm: ...}``, ``{top: ...}``."""
    for other in data:
        if other != key:
            problems.add((*loc, str(other)), f'unknown key "{other}"', f'a {key} condition has only the key "{key}"')
    value, vloc = data[key], (*loc, key)
    if key == "in_segment":
        segment = want_slug(value, vloc, problems)
        return InSegment(segment=segment) if segment is not None else None
    if key == "identity":
        return _read_identity(value, vloc, problems)
    if key == "purchase_overdue":
        return _read_overdue(value, vloc, problems)
    if key == "rfm":
        return _read_rfm(value, vloc, problems)
    return _read_top(value, vloc, problems)


def _read_identity(value: Any, loc: Loc, problems: Problems) -> HasIdentity | None:
    kind = want_slug(value, loc, problems)
    if kind is None:
        return None
    if kind not in KNOWN_IDENTITIES:
        near = suggest(kind, KNOWN_IDENTITIES, cutoff=0.7)
        if near is not None:
            problems.add(loc, f'unknown identity kind "{kind}"', f'did you mean "{near}"?')
            return None
    return HasIdentity(identity=kind)


def _read_overdue(value: Any, loc: Loc, problems: Problems) -> PurchaseOverdue | None:
    spec = want_mapping(value, loc, problems, "a mapping, e.g. {factor: 2, default: 60d}")
    if spec is None:
        return None
    ok = check_keys(spec, loc, problems, ("factor", "default"), ("factor", "default"))
    factor: Decimal | None = None
    if "factor" in spec:
        raw = spec["factor"]
        factor = as_decimal(raw) if is_number(raw) or isinstance(raw, str) else None
        if factor is None or factor <= 0:
            problems.add((*loc, "factor"), f"must be a number greater than 0, not {_shown(raw)}", "e.g. 2 or 1.5")
            factor = None
    default = read_duration(spec["default"], (*loc, "default"), problems) if "default" in spec else None
    if not ok or factor is None or default is None:
        return None
    return PurchaseOverdue(factor=factor, default=default)


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else type_name(value)


def _read_rfm(value: Any, loc: Loc, problems: Problems) -> Rfm | None:
    spec = want_mapping(value, loc, problems, "a mapping, e.g. {recency: {gte: 4}}")
    if spec is None:
        return None
    dimensions = ("recency", "frequency", "monetary")
    check_keys(spec, loc, problems, dimensions)
    scores: list[tuple[Any, RfmScore]] = []
    ok = True
    for dimension in (key for key in spec if key in dimensions):
        score = _read_score(spec[dimension], (*loc, dimension), problems)
        if score is None:
            ok = False
        else:
            scores.append((dimension, score))
    if not spec:
        problems.add(loc, "rfm needs at least one of recency, frequency, monetary", "e.g. {recency: {gte: 4}}")
        return None
    if not ok or len(scores) != len(spec):
        return None
    return Rfm(scores=tuple(scores))


def _read_score(value: Any, loc: Loc, problems: Problems) -> RfmScore | None:
    spec = want_mapping(value, loc, problems, "a comparison, e.g. {gte: 4}")
    if spec is None:
        return None
    check_keys(spec, loc, problems, NUMERIC_OPS)
    ops = [key for key in spec if key in NUMERIC_OPS]
    if len(ops) != 1:
        problems.add(loc, f"a score needs exactly one of {', '.join(NUMERIC_OPS)}", "e.g. {gte: 4}")
        return None
    raw = spec[ops[0]]
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 5:
        problems.add((*loc, ops[0]), f"must be a score from 1 to 5, not {_shown(raw)}", "scores are 1 (low) to 5")
        return None
    return RfmScore(op=ops[0], value=raw)


def _read_top(value: Any, loc: Loc, problems: Problems) -> TopPercent | None:
    spec = want_mapping(value, loc, problems, "a mapping, e.g. {metric: monetary, percent: 10}")
    if spec is None:
        return None
    ok = check_keys(spec, loc, problems, ("metric", "percent"), ("metric", "percent"))
    metric = spec.get("metric")
    if "metric" in spec and metric not in ("monetary", "frequency"):
        problems.add((*loc, "metric"), f"must be monetary or frequency, not {_shown(metric)}")
        ok = False
    percent = spec.get("percent")
    if "percent" in spec and (not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 99):
        problems.add((*loc, "percent"), f"must be a whole number from 1 to 99, not {_shown(percent)}", "e.g. 10")
        ok = False
    if not ok or not isinstance(percent, int) or metric not in ("monetary", "frequency"):
        return None
    return TopPercent(metric=metric, percent=percent)


__all__ = [
    "COLLECTION_KEYS",
    "KNOWN_CHANNELS",
    "PROFILE_NODE_KEYS",
    "WINDOW_KEYS",
    "read_aggregate",
    "read_collection",
    "read_of",
    "read_profile_node",
    "read_window",
]

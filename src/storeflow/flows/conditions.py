"""The condition language: a frozen AST and the way back to documents (parsing: condition_parser.py).

A condition is one of::

    {all: [c, ...]}   {any: [c, ...]}   {not: c}
    {field: <path>, <op>: <value>}                                 -> Comparison
    {history: {event: ..., within|since: ..., where: c}, <aggregate>}  -> History

The nodes are explicit (a Comparison names its path, operator and value; a History node names its
event type, time window, filter and aggregate) so that other packages can compile them, e.g. to SQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from storeflow.flows.durations import format_duration
from storeflow.flows.paths import FieldPath
from storeflow.flows.values import decimal_to_json

ComparisonOp = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "starts_with",
    "exists", "within", "older_than", "before", "after",
]  # fmt: skip
NumericOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
RecencyOp = Literal["within", "older_than"]
SinceAnchor = Literal["flow_start", "trigger"]

COMPARISON_OPS: Final[tuple[str, ...]] = get_args(ComparisonOp)
NUMERIC_OPS: Final[tuple[str, ...]] = get_args(NumericOp)
RECENCY_OPS: Final[tuple[str, ...]] = get_args(RecencyOp)
AGGREGATES: Final[tuple[str, ...]] = ("count", "exists", "sum", "last_seen")


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Comparison(_Node):
    """``{field: path, op: value}``. ``value`` is normalized: a tuple for in/not_in, a timedelta for
    within/older_than, an aware datetime for before/after, a bool for exists, else the JSON value."""

    kind: Literal["comparison"] = "comparison"
    path: FieldPath
    op: ComparisonOp
    value: Any


class AllOf(_Node):
    kind: Literal["all"] = "all"
    conditions: tuple[Condition, ...]


class AnyOf(_Node):
    kind: Literal["any"] = "any"
    conditions: tuple[Condition, ...]


class Not(_Node):
    kind: Literal["not"] = "not"
    condition: Condition


class HistoryWindow(_Node):
    """Which past events count: ``within`` a duration before now, ``since`` an anchor or instant, or
    all time when both are None. ``since`` is "flow_start", "trigger" or an aware datetime."""

    within: timedelta | None = None
    since: SinceAnchor | datetime | None = None


class CountAggregate(_Node):
    kind: Literal["count"] = "count"
    op: NumericOp
    value: int


class ExistsAggregate(_Node):
    kind: Literal["exists"] = "exists"
    value: bool


class SumAggregate(_Node):
    """The sum of a numeric property of the matching events (``of`` has root ``event``)."""

    kind: Literal["sum"] = "sum"
    of: FieldPath
    op: NumericOp
    value: Decimal


class LastSeenAggregate(_Node):
    """When the latest matching event occurred, compared with now. Never seen: older_than is true."""

    kind: Literal["last_seen"] = "last_seen"
    op: RecencyOp
    period: timedelta


Aggregate = Annotated[CountAggregate | ExistsAggregate | SumAggregate | LastSeenAggregate, Field(discriminator="kind")]


class History(_Node):
    """An aggregate over the profile's past events of one type. ``where`` sees each event as ``event``."""

    kind: Literal["history"] = "history"
    event: str
    window: HistoryWindow = HistoryWindow()
    where: Condition | None = None
    aggregate: Aggregate


Condition = Annotated[Comparison | AllOf | AnyOf | Not | History, Field(discriminator="kind")]

for _model in (AllOf, AnyOf, Not, History):
    _model.model_rebuild()


# --- back to documents -----------------------------------------------------------------------


def condition_to_document(condition: Condition) -> dict[str, Any]:
    """The canonical JSON-able document of a condition; ``parse_condition`` accepts it again."""
    if isinstance(condition, AllOf):
        return {"all": [condition_to_document(c) for c in condition.conditions]}
    if isinstance(condition, AnyOf):
        return {"any": [condition_to_document(c) for c in condition.conditions]}
    if isinstance(condition, Not):
        return {"not": condition_to_document(condition.condition)}
    if isinstance(condition, Comparison):
        return {"field": str(condition.path), condition.op: _operand_to_document(condition.value)}
    return _history_to_document(condition)


def _operand_to_document(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_operand_to_document(item) for item in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_to_json(value)
    return value


def _history_to_document(node: History) -> dict[str, Any]:
    spec: dict[str, Any] = {"event": node.event}
    if node.window.within is not None:
        spec["within"] = format_duration(node.window.within)
    elif node.window.since is not None:
        spec["since"] = _operand_to_document(node.window.since)
    if node.where is not None:
        spec["where"] = condition_to_document(node.where)
    agg = node.aggregate
    doc: dict[str, Any] = {"history": spec}
    if isinstance(agg, ExistsAggregate):
        doc["exists"] = agg.value
    elif isinstance(agg, CountAggregate):
        doc["count"] = {agg.op: agg.value}
    elif isinstance(agg, SumAggregate):
        doc["sum"] = {"of": ".".join(agg.of.segments), agg.op: decimal_to_json(agg.value)}
    else:
        doc["last_seen"] = {agg.op: format_duration(agg.period)}
    return doc


def iter_conditions(condition: Condition) -> list[Condition]:
    """The condition and all nodes below it (including ``history.where``), depth first."""
    found: list[Condition] = [condition]
    if isinstance(condition, AllOf | AnyOf):
        for child in condition.conditions:
            found.extend(iter_conditions(child))
    elif isinstance(condition, Not):
        found.extend(iter_conditions(condition.condition))
    elif isinstance(condition, History) and condition.where is not None:
        found.extend(iter_conditions(condition.where))
    return found


__all__ = [
    "Aggregate",
    "AllOf",
    "AnyOf",
    "Comparison",
    "ComparisonOp",
    "Condition",
    "CountAggregate",
    "ExistsAggregate",
    "History",
    "HistoryWindow",
    "LastSeenAggregate",
    "Not",
    "NumericOp",
    "SumAggregate",
    "condition_to_document",
    "iter_conditions",
]

"""The condition language: a frozen AST and the way back to documents (parsing: condition_parser.py).

A condition is one of::

    {all: [c, ...]}   {any: [c, ...]}   {not: c}
    {field: <path>, <op>: <value>}                                        -> Comparison
    {history: {event: ..., <window>, where: c}, <aggregate>}              -> History (source events)
    {orders: {<window>, where: c}, <aggregate>}                           -> History (source orders)
    {carts: {<window>, where: c}, <aggregate>}                            -> History (source carts)
    {messages: {channel: ..., <window>, where: c}, <aggregate>}           -> History (source messages)
    {in_segment: <segment id>}                                            -> InSegment
    {identity: <kind>}                                                    -> HasIdentity
    {purchase_overdue: {factor: 2, default: 60d}}                         -> PurchaseOverdue
    {rfm: {recency: {gte: 4}, frequency: ..., monetary: ...}}             -> Rfm
    {top: {metric: monetary, percent: 10}}                                -> TopPercent

``<window>`` is one of ``within: 30d``, ``since: <instant> | first_order | flow_start | trigger``,
``before: <instant> | <duration>`` or ``between: [<instant>, <instant>]``; no window is all time.
The aggregates: ``count``, ``exists``, ``sum`` / ``min`` / ``max`` / ``avg`` (``of`` a numeric field),
``first_seen`` and ``last_seen`` (compared with now or with an instant).

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
    "exists", "within", "older_than", "before", "after", "anniversary_within",
]  # fmt: skip
NumericOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
RecencyOp = Literal["within", "older_than"]
SeenOp = Literal["within", "older_than", "before", "after"]
SinceAnchor = Literal["flow_start", "trigger", "first_order"]
Source = Literal["events", "orders", "carts", "messages"]
RfmDimension = Literal["recency", "frequency", "monetary"]

COMPARISON_OPS: Final[tuple[str, ...]] = get_args(ComparisonOp)
NUMERIC_OPS: Final[tuple[str, ...]] = get_args(NumericOp)
RECENCY_OPS: Final[tuple[str, ...]] = get_args(RecencyOp)
SEEN_OPS: Final[tuple[str, ...]] = get_args(SeenOp)
AGGREGATES: Final[tuple[str, ...]] = ("count", "exists", "sum", "min", "max", "avg", "first_seen", "last_seen")
SOURCES: Final[tuple[str, ...]] = get_args(Source)
SOURCE_KEYS: Final[dict[str, Source]] = {"history": "events", "orders": "orders", "carts": "carts",
                                         "messages": "messages"}
"""The document key of each collection a History node aggregates over."""
SOURCE_ROOTS: Final[dict[str, str]] = {"events": "event", "orders": "order", "carts": "cart",
                                       "messages": "message"}
"""The record root a ``where`` (and an aggregate's ``of``) reads inside each collection."""


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Comparison(_Node):
    """``{field: path, op: value}``. ``value`` is normalized: a tuple for in/not_in, a timedelta for
    within/older_than/anniversary_within, an aware datetime for before/after, a bool for exists, else
    the JSON value. ``anniversary_within: 7d`` (whole days) holds when an anniversary of the value's
    date (month and day; 29 February falls on 28 February in other years) is one of the 7 days
    starting today (today .. today + 6; ``1d`` is today only), "today" being the date of now in the
    store's time zone; the value is read as a date (an ISO date, or a date-time's UTC date)."""

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
    """Which past items count, by their time (events: occurred_at, orders: placed_at, carts:
    last_activity_at, messages: created_at). At most one field is set; none is all time up to now.

    - ``within``: from ``now - within`` to now (inclusive at both ends);
    - ``since``: from an anchor ("flow_start", "trigger", "first_order": the profile's first order)
      or an aware datetime, to now;
    - ``before``: strictly before an aware datetime, or (a timedelta) strictly before ``now - before``;
    - ``between``: from the first instant to the second, inclusive.
    """

    within: timedelta | None = None
    since: SinceAnchor | datetime | None = None
    before: datetime | timedelta | None = None
    between: tuple[datetime, datetime] | None = None


class CountAggregate(_Node):
    kind: Literal["count"] = "count"
    op: NumericOp
    value: int


class ExistsAggregate(_Node):
    kind: Literal["exists"] = "exists"
    value: bool


class SumAggregate(_Node):
    """The sum of a numeric field of the matching items (``of``'s root is the collection's record:
    event, order, cart or message); no matching item sums to 0."""

    kind: Literal["sum"] = "sum"
    of: FieldPath
    op: NumericOp
    value: Decimal


class LastSeenAggregate(_Node):
    """When the latest matching item occurred, compared with now (within / older_than a ``period``)
    or with an instant (before / after ``at``). Never seen: only older_than and before are true."""

    kind: Literal["last_seen"] = "last_seen"
    op: SeenOp
    period: timedelta | None = None
    at: datetime | None = None


class FirstSeenAggregate(_Node):
    """When the earliest matching item occurred; the same comparisons as ``last_seen``."""

    kind: Literal["first_seen"] = "first_seen"
    op: SeenOp
    period: timedelta | None = None
    at: datetime | None = None


class ValueAggregate(_Node):
    """``min``, ``max`` or ``avg`` of a numeric field of the matching items (``of``'s root is the
    collection's record). No matching item with a value: the result is missing (false but for ne)."""

    kind: Literal["min", "max", "avg"]
    of: FieldPath
    op: NumericOp
    value: Decimal


Aggregate = Annotated[
    CountAggregate | ExistsAggregate | SumAggregate | ValueAggregate | FirstSeenAggregate | LastSeenAggregate,
    Field(discriminator="kind"),
]


class History(_Node):
    """An aggregate over one of the profile's collections: its events of one type (``source``
    "events", ``event`` set), its orders, its carts or the messages sent to it (``channel`` set or
    None for every channel). ``where`` sees each item as its record (event, order, cart, message)."""

    kind: Literal["history"] = "history"
    source: Source = "events"
    event: str | None = None
    channel: str | None = None
    window: HistoryWindow = HistoryWindow()
    where: Condition | None = None
    aggregate: Aggregate


class InSegment(_Node):
    """``{in_segment: vip}``: the profile is a current member of the segment."""

    kind: Literal["in_segment"] = "in_segment"
    segment: str


class HasIdentity(_Node):
    """``{identity: customer_id}``: the profile has an identity of this kind (email, phone,
    customer_id, anonymous_id, ...)."""

    kind: Literal["identity"] = "identity"
    identity: str


class PurchaseOverdue(_Node):
    """``{purchase_overdue: {factor: 2, default: 60d}}``: the profile has ordered and its next order
    is overdue: ``now - last_order_at`` is more than ``factor`` times its average interval between
    orders (``(last_order_at - first_order_at) / (orders_count - 1)``), or more than ``default``
    when it has one order."""

    kind: Literal["purchase_overdue"] = "purchase_overdue"
    factor: Decimal
    default: timedelta


class RfmScore(_Node):
    """One score (1 to 5) compared with a number."""

    op: NumericOp
    value: int


class Rfm(_Node):
    """``{rfm: {recency: {gte: 4}, monetary: {gte: 4}}}``: the profile's RFM scores, 1 to 5 by
    quintiles of the store's customers with an order (segment statistics, ``SegmentStats``), compared
    as given (every dimension given must hold). A profile without an order has no scores: false."""

    kind: Literal["rfm"] = "rfm"
    scores: tuple[tuple[RfmDimension, RfmScore], ...]


class TopPercent(_Node):
    """``{top: {metric: monetary, percent: 10}}``: the profile is in the top ``percent`` % of the
    store's customers by ``metric`` (monetary: lifetime spend in the store's currency; frequency:
    orders count), by the segment statistics' percentile cut points."""

    kind: Literal["top"] = "top"
    metric: Literal["monetary", "frequency"]
    percent: int


Condition = Annotated[
    Comparison | AllOf | AnyOf | Not | History | InSegment | HasIdentity | PurchaseOverdue | Rfm | TopPercent,
    Field(discriminator="kind"),
]

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
    if isinstance(condition, History):
        return _history_to_document(condition)
    return _other_to_document(condition)


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
    spec: dict[str, Any] = {}
    if node.source == "events":
        spec["event"] = node.event
    elif node.source == "messages" and node.channel is not None:
        spec["channel"] = node.channel
    spec.update(_window_to_document(node.window))
    if node.where is not None:
        spec["where"] = condition_to_document(node.where)
    key = next(key for key, source in SOURCE_KEYS.items() if source == node.source)
    doc: dict[str, Any] = {key: spec}
    doc.update(_aggregate_to_document(node.aggregate))
    return doc


def _window_to_document(window: HistoryWindow) -> dict[str, Any]:
    if window.within is not None:
        return {"within": format_duration(window.within)}
    if window.since is not None:
        return {"since": _operand_to_document(window.since)}
    if window.before is not None:
        return {"before": _operand_to_document(window.before)}
    if window.between is not None:
        return {"between": [_operand_to_document(t) for t in window.between]}
    return {}


def _aggregate_to_document(agg: Aggregate) -> dict[str, Any]:
    """``of`` is written without its root (``total``: the collection's record's field)."""
    if isinstance(agg, ExistsAggregate):
        return {"exists": agg.value}
    if isinstance(agg, CountAggregate):
        return {"count": {agg.op: agg.value}}
    if isinstance(agg, SumAggregate | ValueAggregate):
        return {agg.kind: {"of": ".".join(agg.of.segments), agg.op: decimal_to_json(agg.value)}}
    operand = agg.period if agg.op in RECENCY_OPS else agg.at
    return {agg.kind: {agg.op: _operand_to_document(operand)}}


def _other_to_document(node: InSegment | HasIdentity | PurchaseOverdue | Rfm | TopPercent) -> dict[str, Any]:
    if isinstance(node, InSegment):
        return {"in_segment": node.segment}
    if isinstance(node, HasIdentity):
        return {"identity": node.identity}
    if isinstance(node, PurchaseOverdue):
        return {"purchase_overdue": {"factor": decimal_to_json(node.factor), "default": format_duration(node.default)}}
    if isinstance(node, Rfm):
        return {"rfm": {dimension: {score.op: score.value} for dimension, score in node.scores}}
    return {"top": {"metric": node.metric, "percent": node.percent}}


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
    "FirstSeenAggregate",
    "HasIdentity",
    "History",
    "HistoryWindow",
    "InSegment",
    "LastSeenAggregate",
    "Not",
    "NumericOp",
    "PurchaseOverdue",
    "Rfm",
    "RfmScore",
    "SumAggregate",
    "TopPercent",
    "ValueAggregate",
    "condition_to_document",
    "iter_conditions",
]

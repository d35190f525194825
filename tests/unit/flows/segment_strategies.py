"""Hypothesis strategies for segment conditions (the AST of conditions.py), shared by the parser,
evaluator and next-flip tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from storeflow.flows.conditions import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    CountAggregate,
    ExistsAggregate,
    FirstSeenAggregate,
    HasIdentity,
    History,
    HistoryWindow,
    InSegment,
    LastSeenAggregate,
    Not,
    PurchaseOverdue,
    Rfm,
    RfmScore,
    SumAggregate,
    TopPercent,
    ValueAggregate,
)
from storeflow.flows.paths import parse_field_path

BASE = datetime(2026, 3, 1, tzinfo=UTC)
NUMERIC_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")

durations = st.sampled_from([timedelta(hours=1), timedelta(days=1), timedelta(days=3), timedelta(days=10),
                             timedelta(days=30)])  # fmt: skip
instants = st.integers(-40, 5).map(lambda d: BASE + timedelta(days=d, hours=d % 7))
amounts = st.integers(0, 400).map(lambda n: Decimal(n) / 2)


def windows() -> st.SearchStrategy[HistoryWindow]:
    """Every window a segment can use (not the run's anchors flow_start and trigger)."""
    return st.one_of(
        st.just(HistoryWindow()),
        durations.map(lambda d: HistoryWindow(within=d)),
        st.one_of(st.just("first_order"), instants).map(lambda s: HistoryWindow(since=s)),
        st.one_of(instants, durations).map(lambda b: HistoryWindow(before=b)),
        st.tuples(instants, instants).map(lambda p: HistoryWindow(between=(min(p), max(p)))),
    )


ITEM_FIELDS: dict[str, list[tuple[str, str]]] = {
    # (path, kind of operand) per collection root
    "event": [("event.total", "number"), ("event.channel", "text"), ("event.occurred_at", "time")],
    "order": [("order.total", "number"), ("order.currency", "text"), ("order.placed_at", "time"),
              ("order.skus", "list"), ("order.categories", "list"), ("order.discount_codes", "list")],
    "cart": [("cart.value", "number"), ("cart.converted", "bool"), ("cart.last_activity_at", "time")],
    "message": [("message.kind", "text"), ("message.opened_at", "time"), ("message.clicked_at", "time")],
}  # fmt: skip
NUMERIC_OF = {"event": "total", "order": "total", "cart": "value", "message": None}
TEXTS = ["a", "b", "IDR", "USD", "marketing", "email"]


@st.composite
def item_comparisons(draw: st.DrawFn, root: str) -> Comparison:
    path, kind = draw(st.sampled_from(ITEM_FIELDS[root]))
    if kind == "number":
        op = draw(st.sampled_from([*NUMERIC_OPS, "exists"]))
        value: Any = draw(st.booleans()) if op == "exists" else draw(amounts)
    elif kind == "text":
        op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "starts_with", "exists"]))
        value = {"in": None, "not_in": None, "exists": None}.get(op, draw(st.sampled_from(TEXTS)))
        if op in ("in", "not_in"):
            value = tuple(draw(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=2)))
        elif op == "exists":
            value = draw(st.booleans())
    elif kind == "bool":
        op, value = "eq", draw(st.booleans())
    elif kind == "list":
        op = draw(st.sampled_from(["contains", "not_contains", "in"]))
        value = draw(st.sampled_from(TEXTS))
        if op == "in":
            value = (value,)
    else:
        op = draw(st.sampled_from(["within", "older_than", "before", "after", "exists"]))
        value = {"within": durations, "older_than": durations, "before": instants, "after": instants,
                 "exists": st.booleans()}[op]  # fmt: skip
        value = draw(value)
    return Comparison(path=parse_field_path(path), op=op, value=value)


@st.composite
def aggregates(draw: st.DrawFn, root: str) -> Any:
    kinds = ["count", "exists", "first_seen", "last_seen"]
    if NUMERIC_OF[root]:
        kinds += ["sum", "min", "max", "avg"]
    kind = draw(st.sampled_from(kinds))
    if kind == "count":
        return CountAggregate(op=draw(st.sampled_from(NUMERIC_OPS)), value=draw(st.integers(0, 3)))
    if kind == "exists":
        return ExistsAggregate(value=draw(st.booleans()))
    if kind in ("first_seen", "last_seen"):
        op = draw(st.sampled_from(["within", "older_than", "before", "after"]))
        cls = FirstSeenAggregate if kind == "first_seen" else LastSeenAggregate
        if op in ("within", "older_than"):
            return cls(op=op, period=draw(durations))
        return cls(op=op, at=draw(instants))
    of = parse_field_path(f"{root}.{NUMERIC_OF[root]}")
    op = draw(st.sampled_from(NUMERIC_OPS))
    if kind == "sum":
        return SumAggregate(of=of, op=op, value=draw(amounts))
    return ValueAggregate(kind=kind, of=of, op=op, value=draw(amounts))


SOURCE_OF_ROOT = {"event": "events", "order": "orders", "cart": "carts", "message": "messages"}


@st.composite
def collections(draw: st.DrawFn) -> History:
    root = draw(st.sampled_from(list(SOURCE_OF_ROOT)))
    source = SOURCE_OF_ROOT[root]
    where = draw(st.none() | item_comparisons(root) | st.lists(item_comparisons(root), min_size=1, max_size=2).map(
        lambda cs: AnyOf(conditions=tuple(cs))))  # fmt: skip
    return History(
        source=source,  # type: ignore[arg-type]
        event=draw(st.sampled_from(["order_placed", "page_viewed"])) if source == "events" else None,
        channel=draw(st.sampled_from([None, "email", "sms"])) if source == "messages" else None,
        window=draw(windows()),
        where=where,
        aggregate=draw(aggregates(root)),
    )


profile_comparisons = st.one_of(
    st.builds(lambda op, v: Comparison(path=parse_field_path("profile.orders_count"), op=op, value=v),
              st.sampled_from(NUMERIC_OPS), st.integers(0, 3)),
    st.builds(lambda op, d: Comparison(path=parse_field_path("profile.last_order_at"), op=op, value=d),
              st.sampled_from(["within", "older_than"]), durations),
    st.builds(lambda d: Comparison(path=parse_field_path("profile.birthday"), op="anniversary_within", value=d),
              st.sampled_from([timedelta(days=1), timedelta(days=7), timedelta(days=30)])),
    st.builds(lambda v: Comparison(path=parse_field_path("profile.consent.sms"), op="eq", value=v),
              st.sampled_from(["subscribed", "unsubscribed"])),
)  # fmt: skip

profile_nodes = st.one_of(
    st.sampled_from(["vip", "lapsed"]).map(lambda s: InSegment(segment=s)),
    st.sampled_from(["email", "phone", "customer_id"]).map(lambda k: HasIdentity(identity=k)),
    st.builds(lambda f, d: PurchaseOverdue(factor=f, default=d),
              st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(2)]), durations),
    st.lists(st.sampled_from(["recency", "frequency", "monetary"]), min_size=1, max_size=3, unique=True).flatmap(
        lambda dims: st.tuples(*(st.builds(lambda op, v: RfmScore(op=op, value=v), st.sampled_from(NUMERIC_OPS),
                                           st.integers(1, 5)) for _ in dims)).map(
            lambda scores: Rfm(scores=tuple(zip(dims, scores, strict=True))))),
    st.builds(lambda m, p: TopPercent(metric=m, percent=p), st.sampled_from(["monetary", "frequency"]),
              st.integers(1, 99)),
)  # fmt: skip

leaves: st.SearchStrategy[Condition] = st.one_of(collections(), collections(), profile_comparisons, profile_nodes)

conditions: st.SearchStrategy[Condition] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: AllOf(conditions=tuple(cs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: AnyOf(conditions=tuple(cs))),
        inner.map(lambda c: Not(condition=c)),
    ),
    max_leaves=4,
)

"""Parsing segment conditions (collections, windows, aggregates, profile nodes): every node from its
document, every problem at once with its path and hint, and the round trip through documents."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from segment_strategies import conditions

from storeflow.errors import FlowValidationError
from storeflow.flows import flow_json_schema, load_flow
from storeflow.flows.condition_parser import parse_condition
from storeflow.flows.conditions import (
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
    PurchaseOverdue,
    Rfm,
    RfmScore,
    SumAggregate,
    TopPercent,
    ValueAggregate,
    condition_to_document,
    iter_conditions,
)
from storeflow.flows.loader import FlowYamlLoader
from storeflow.flows.paths import parse_field_path

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 2, 1, 12, tzinfo=UTC)


def problems_of(data: Any) -> list[tuple[str, str, str | None]]:
    with pytest.raises(FlowValidationError) as info:
        parse_condition(data)
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def path(text: str) -> Any:
    return parse_field_path(text)


CASES: list[tuple[dict[str, Any], Condition]] = [
    (
        {"orders": {"within": "60d"}, "exists": False},
        History(source="orders", window=HistoryWindow(within=timedelta(days=60)),
                aggregate=ExistsAggregate(value=False)),
    ),
    (
        {"orders": {"since": "first_order", "where": {"field": "order.currency", "eq": "IDR"}},
         "sum": {"of": "total", "gte": 1000000}},
        History(source="orders", window=HistoryWindow(since="first_order"),
                where=Comparison(path=path("order.currency"), op="eq", value="IDR"),
                aggregate=SumAggregate(of=path("order.total"), op="gte", value=Decimal(1000000))),
    ),
    (
        {"orders": {"before": "90d"}, "avg": {"of": "order.total", "gt": 12.5}},
        History(source="orders", window=HistoryWindow(before=timedelta(days=90)),
                aggregate=ValueAggregate(kind="avg", of=path("order.total"), op="gt", value=Decimal("12.5"))),
    ),
    (
        {"carts": {"between": ["2026-01-01", "2026-02-01T12:00:00Z"]}, "max": {"of": "value", "gte": 1000000}},
        History(source="carts", window=HistoryWindow(between=(T1, T2)),
                aggregate=ValueAggregate(kind="max", of=path("cart.value"), op="gte", value=Decimal(1000000))),
    ),
    (
        {"messages": {"channel": "email", "within": "7d", "where": {"field": "message.opened_at", "exists": True}},
         "count": {"gte": 1}},
        History(source="messages", channel="email", window=HistoryWindow(within=timedelta(days=7)),
                where=Comparison(path=path("message.opened_at"), op="exists", value=True),
                aggregate=CountAggregate(op="gte", value=1)),
    ),
    (
        {"history": {"event": "page_viewed", "before": "2026-01-01"}, "first_seen": {"after": "2026-01-01"}},
        History(event="page_viewed", window=HistoryWindow(before=T1), aggregate=FirstSeenAggregate(op="after", at=T1)),
    ),
    (
        {"history": {"event": "page_viewed"}, "last_seen": {"within": "7d"}},
        History(event="page_viewed", aggregate=LastSeenAggregate(op="within", period=timedelta(days=7))),
    ),
    ({"in_segment": "vip"}, InSegment(segment="vip")),
    ({"identity": "customer_id"}, HasIdentity(identity="customer_id")),
    (
        {"purchase_overdue": {"factor": 1.5, "default": "60d"}},
        PurchaseOverdue(factor=Decimal("1.5"), default=timedelta(days=60)),
    ),
    (
        {"rfm": {"recency": {"gte": 4}, "monetary": {"eq": 5}}},
        Rfm(scores=(("recency", RfmScore(op="gte", value=4)), ("monetary", RfmScore(op="eq", value=5)))),
    ),
    ({"top": {"metric": "monetary", "percent": 10}}, TopPercent(metric="monetary", percent=10)),
    (
        {"field": "profile.birthday", "anniversary_within": "7d"},
        Comparison(path=path("profile.birthday"), op="anniversary_within", value=timedelta(days=7)),
    ),
    (
        {"field": "order.categories", "contains": "shoes"},
        Comparison(path=path("order.categories"), op="contains", value="shoes"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("document", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_node_parses_and_round_trips(document: dict[str, Any], expected: Condition) -> None:
    parsed = parse_condition(document)
    assert parsed == expected
    assert parse_condition(condition_to_document(parsed)) == parsed


@settings(max_examples=300, deadline=None)
@given(conditions)
def test_round_trip_of_generated_conditions(condition: Condition) -> None:
    document = condition_to_document(condition)
    assert parse_condition(document) == condition
    assert condition_to_document(parse_condition(document)) == document


@settings(max_examples=200, deadline=None)
@given(conditions)
def test_the_published_schema_accepts_every_canonical_condition(condition: Condition) -> None:
    schema = flow_json_schema()
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/condition"})
    validator.validate(condition_to_document(condition))


def test_iter_conditions_reaches_where() -> None:
    condition = parse_condition({"all": [{"in_segment": "vip"}, {"orders": {"where": {"field": "order.total",
                                 "gte": 1}}, "exists": True}]})  # fmt: skip
    kinds = [node.kind for node in iter_conditions(condition)]
    assert kinds == ["all", "in_segment", "history", "comparison"]


def test_problems_all_at_once_with_paths_and_hints() -> None:
    found = problems_of({"all": [
        {"orders": {"within": "30d", "since": "first_order", "where": {"field": "event.total", "gte": 1}},
         "sum": {"of": "currency", "gte": 1}},
        {"messages": {"channel": "emial", "where": {"orders": {}, "exists": True}}, "count": {"gte": 1}},
        {"carts": {"between": ["2026-02-01", "2026-01-01"]}, "avg": {"of": "value"}},
        {"rfm": {"recency": {"gte": 6}, "loyalty": {"eq": 1}}},
        {"top": {"metric": "spend", "percent": 100}},
        {"purchase_overdue": {"factor": 0, "default": "60 days"}},
        {"in_segment": "VIP!"},
        {"identity": "emial"},
        {"history": {"event": "page_viewed"}, "last_seen": {"before": "yesterday"}},
        {"field": "profile.orders_count", "anniversary_within": "7d"},
        {"in_segmnet": "vip"},
    ]})  # fmt: skip
    assert found == [
        ("all[0].orders", 'use either "within" or "since", not both', None),
        ("all[0].orders.where.field", '"event.total" cannot be used here', 'fields here start with "order."'),
        ("all[0].sum.of", "order.currency is text, not a number", "e.g. of: total"),
        ("all[1].messages.channel", 'unknown channel "emial"', 'did you mean "email"?'),
        ("all[1].messages.where", "orders conditions cannot be nested", None),
        ("all[2].carts.between", "the first date-time is after the second", "write the earlier one first"),
        ("all[2].avg", "avg needs exactly one of eq, ne, gt, gte, lt, lte", "e.g. {of: total, gte: 500}"),
        ("all[3].rfm.loyalty", 'unknown key "loyalty"', "allowed keys: recency, frequency, monetary"),
        ("all[3].rfm.recency.gte", "must be a score from 1 to 5, not the number 6", "scores are 1 (low) to 5"),
        ("all[4].top.metric", 'must be monetary or frequency, not "spend"', None),
        ("all[4].top.percent", "must be a whole number from 1 to 99, not the number 100", "e.g. 10"),
        ("all[5].purchase_overdue.factor", "must be a number greater than 0, not the number 0", "e.g. 2 or 1.5"),
        ("all[5].purchase_overdue.default", '"60 days" is not a duration', "use 1h, 30m or 2d"),
        ("all[6].in_segment", '"VIP!" is not a valid id',
         "use lowercase letters, digits, - and _ (at most 64, starting with a letter or digit)"),
        ("all[7].identity", 'unknown identity kind "emial"', 'did you mean "email"?'),
        ("all[8].last_seen.before", '"yesterday" is not a date-time',
         "use ISO 8601, e.g. 2026-01-31 or 2026-01-31T09:00:00Z"),
        ("all[9].anniversary_within", 'profile.orders_count is a whole number: "anniversary_within" does not apply '
         "to it", "operators for it: eq, ne, in, not_in, exists, gt, gte, lt, lte"),
        ("all[10].in_segmnet", 'unknown key "in_segmnet"', 'did you mean "in_segment"?'),
    ]  # fmt: skip


def test_nested_profile_nodes_and_message_root_outside_messages_are_refused() -> None:
    found = problems_of({"all": [
        {"history": {"event": "page_viewed", "where": {"in_segment": "vip"}}, "exists": True},
        {"field": "message.status", "eq": "sent"},
        {"history": {"event": "page_viewed"}},
        {"orders": {}, "exists": True, "count": {"gte": 1}},
    ]})  # fmt: skip
    assert [(p, m) for p, m, _ in found] == [
        ("all[0].history.where", 'in_segment cannot be used in "where"'),
        ("all[1].field", '"message.status" cannot be used here'),
        ("all[2]", "the history condition has no aggregate"),
        ("all[3]", "the orders condition has 2 aggregates (exists, count); use one"),
    ]


def test_flows_accept_segment_conditions() -> None:
    flow = load_flow(
        """
id: winback
name: Win back
trigger: {event: page_viewed, filter: {all: [{in_segment: vip}, {purchase_overdue: {factor: 2, default: 60d}}]}}
steps:
  - if: {orders: {within: 30d}, count: {gte: 1}}
    then: [{action: tag, tags: [buyer]}]
"""
    )
    assert flow.to_document()["trigger"]["filter"]["all"][0] == {"in_segment": "vip"}


def test_the_examples_of_the_condition_language_docs_parse() -> None:
    text = (Path(__file__).parents[3] / "docs" / "segments.md").read_text(encoding="utf-8")
    section = text.split("## The condition language", 1)[1].split("\n## ", 1)[0]
    examples = []
    for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL):
        examples.extend(chunk for chunk in re.split(r"^#.*$", block, flags=re.MULTILINE) if chunk.strip())
    assert len(examples) >= 9
    for example in examples:
        for line in (example.splitlines() if example.lstrip().startswith("{") else [example]):
            if line.strip():
                parse_condition(yaml.load(line, Loader=FlowYamlLoader))

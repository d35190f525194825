"""Parsing conditions into the AST, and back to documents."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storeflow.errors import FlowValidationError
from storeflow.flows import (
    AllOf,
    AnyOf,
    Comparison,
    CountAggregate,
    ExistsAggregate,
    FieldPath,
    History,
    HistoryWindow,
    LastSeenAggregate,
    Not,
    SumAggregate,
    condition_to_document,
    iter_conditions,
    parse_condition,
    parse_field_path,
)
from storeflow.flows.conditions import COMPARISON_OPS


def problems_of(data: Any, path: str = "") -> list[tuple[str, str, str | None]]:
    with pytest.raises(FlowValidationError) as info:
        parse_condition(data, path)
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def test_comparison_node_is_explicit() -> None:
    cond = parse_condition({"field": "order.line_items.0.sku", "eq": "ABC"})
    assert cond == Comparison(path=FieldPath(root="order", segments=("line_items", "0", "sku")), op="eq", value="ABC")


@pytest.mark.parametrize(
    ("op", "value", "normalized"),
    [
        ("eq", "US", "US"),
        ("ne", 3, 3),
        ("gt", 10, 10),
        ("gte", "12.50", "12.50"),
        ("lt", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("lte", 1.5, 1.5),
        ("in", ["SE", "NO"], ("SE", "NO")),
        ("not_in", [1, 2], (1, 2)),
        ("contains", "vip", "vip"),
        ("not_contains", "vip", "vip"),
        ("starts_with", "+55", "+55"),
        ("exists", False, False),
        ("within", "30d", timedelta(days=30)),
        ("older_than", "1h30m", timedelta(hours=1, minutes=30)),
        ("before", "2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("after", "2026-01-31T09:00:00+02:00", datetime(2026, 1, 31, 7, tzinfo=UTC)),
    ],
)
def test_every_operator_parses_and_round_trips(op: str, value: Any, normalized: Any) -> None:
    cond = parse_condition({"field": "profile.x", op: value})
    assert isinstance(cond, Comparison)
    assert cond.op == op
    assert cond.value == normalized
    again = parse_condition(condition_to_document(cond))
    assert again == cond


def test_logic_nodes() -> None:
    cond = parse_condition(
        {"all": [{"any": [{"field": "event.a", "eq": 1}, {"not": {"field": "event.b", "exists": True}}]}]}
    )
    assert isinstance(cond, AllOf)
    inner = cond.conditions[0]
    assert isinstance(inner, AnyOf)
    assert isinstance(inner.conditions[1], Not)
    assert len(iter_conditions(cond)) == 5
    assert condition_to_document(cond) == {
        "all": [{"any": [{"field": "event.a", "eq": 1}, {"not": {"field": "event.b", "exists": True}}]}]
    }


def test_history_nodes() -> None:
    count = parse_condition(
        {
            "history": {
                "event": "message_opened",
                "within": "30d",
                "where": {"field": "event.campaign", "eq": "x"},
            },
            "count": {"gte": 1},
        }
    )
    assert isinstance(count, History)
    assert count.event == "message_opened"
    assert count.window == HistoryWindow(within=timedelta(days=30))
    assert count.aggregate == CountAggregate(op="gte", value=1)
    assert isinstance(count.where, Comparison)

    exists = parse_condition({"history": {"event": "order_placed", "since": "flow_start"}, "exists": True})
    assert isinstance(exists, History)
    assert exists.window.since == "flow_start"
    assert exists.aggregate == ExistsAggregate(value=True)

    total = parse_condition(
        {"history": {"event": "order_placed", "within": "365d"}, "sum": {"of": "total", "gte": 500}}
    )
    assert isinstance(total, History)
    assert total.aggregate == SumAggregate(of=parse_field_path("event.total"), op="gte", value=Decimal(500))

    seen = parse_condition({"history": {"event": "product_viewed"}, "last_seen": {"older_than": "7d"}})
    assert isinstance(seen, History)
    assert seen.window == HistoryWindow()
    assert seen.aggregate == LastSeenAggregate(op="older_than", period=timedelta(days=7))

    since = parse_condition({"history": {"event": "order_placed", "since": "2026-01-01"}, "exists": False})
    assert isinstance(since, History)
    assert since.window.since == datetime(2026, 1, 1, tzinfo=UTC)

    for cond in (count, exists, total, seen, since):
        assert parse_condition(condition_to_document(cond)) == cond


def test_condition_with_no_operator_or_two() -> None:
    assert problems_of({"field": "profile.x"}) == [
        (
            "",
            "the comparison has no operator",
            "operators: " + ", ".join(COMPARISON_OPS),
        )
    ]
    assert problems_of({"field": "profile.x", "gt": 1, "lt": 5}, "trigger.filter") == [
        (
            "trigger.filter",
            "the comparison has 2 operators (gt, lt); use exactly one",
            "combine comparisons with all: [...]",
        )
    ]


def test_unknown_operator_suggests() -> None:
    assert problems_of({"field": "profile.x", "gtee": 1}) == [
        ("gtee", 'unknown operator "gtee"', 'did you mean "gte"?')
    ]


def test_bad_roots_and_paths() -> None:
    found = problems_of(
        {
            "all": [
                {"field": "prfile.x", "eq": 1},
                {"field": "customer.x", "eq": 1},
                {"field": "event..x", "eq": 1},
            ]
        }
    )
    assert found == [
        ("all[0].field", '"prfile.x" does not start with a known root', 'did you mean "profile"?'),
        (
            "all[1].field",
            '"customer.x" does not start with a known root',
            "paths start with event, profile, order, cart, product, run",
        ),
        ("all[2].field", '"event..x" is not a valid field path', "remove the empty part between dots"),
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"field": "profile.x", "in": "SE"}, ("in", "must be a list of values, not text")),
        ({"field": "profile.x", "in": []}, ("in", "must not be empty")),
        ({"field": "profile.x", "eq": None}, ("eq", "must not be null")),
        ({"field": "profile.x", "gt": "abc"}, ("gt", "must be a number or a date-time, not text")),
        ({"field": "profile.x", "exists": "yes"}, ("exists", "must be true or false, not text")),
        ({"field": "profile.x", "within": 30}, ("within", "30 is not a duration")),
        ({"field": "profile.x", "before": "tomorrow"}, ("before", '"tomorrow" is not a date-time')),
        (
            {"field": "profile.x", "starts_with": 5},
            ("starts_with", "must be non-empty text, not the number 5"),
        ),
        ({"all": []}, ("all", '"all" needs at least one condition')),
        ({"any": {"field": "profile.x", "eq": 1}}, ("any", "must be a list of conditions, not a mapping")),
        ("profile.x == 1", ("", "must be a condition (a mapping), not text")),
        ({}, ("", "an empty mapping is not a condition")),
        ({"feild": "profile.x", "eq": 1}, ("", 'the comparison with "eq" has no "field"')),
        ({"alll": []}, ("alll", 'unknown key "alll"')),
    ],
)
def test_bad_values(data: Any, expected: tuple[str, str]) -> None:
    assert [(path, message) for path, message, _ in problems_of(data)] == [expected]


def test_history_problems_all_at_once() -> None:
    found = problems_of(
        {
            "history": {
                "event": "order_placd",
                "within": "30d",
                "since": "flow_start",
                "where": {"any": [{"field": "profile.x", "eq": 1}, {"history": {"event": "x"}, "exists": True}]},
                "colour": "red",
            },
            "count": {"gte": -1},
        }
    )
    assert found == [
        ("history.colour", 'unknown key "colour"', "allowed keys: event, within, since, before, between, where"),
        ("history.event", 'unknown event type "order_placd"', 'did you mean "order_placed"?'),
        ("history", 'use either "within" or "since", not both', None),
        ("history.where.any[0].field", '"profile.x" cannot be used here', 'fields here start with "event."'),
        ("history.where.any[1]", "history conditions cannot be nested", None),
        ("count.gte", "must be a whole number of 0 or more, not the number -1", None),
    ]


def test_history_aggregates_zero_or_two() -> None:
    assert problems_of({"history": {"event": "order_placed"}})[0][1] == "the history condition has no aggregate"
    assert (
        problems_of({"history": {"event": "order_placed"}, "exists": True, "count": {"gt": 1}})[0][1]
        == "the history condition has 2 aggregates (exists, count); use one"
    )
    assert problems_of({"history": {"event": "order_placed"}, "sum": {"gte": 5}}) == [
        ("sum", 'missing required key "of"', None)
    ]
    assert problems_of({"history": {"event": "order_placed"}, "last_seen": {}})[0][1] == (
        "last_seen needs exactly one of within, older_than, before, after"
    )
    assert problems_of({"history": {"event": "order_placed", "since": "yesterday"}, "exists": True})[0][:2] == (
        "history.since",
        '"yesterday" is not a start',
    )


def test_custom_event_types_are_allowed() -> None:
    cond = parse_condition({"history": {"event": "loyalty_points_earned"}, "exists": True})
    assert isinstance(cond, History)
    assert cond.event == "loyalty_points_earned"


def test_conditions_are_frozen() -> None:
    cond = parse_condition({"field": "profile.x", "eq": 1})
    assert isinstance(cond, Comparison)
    with pytest.raises(ValueError, match="frozen"):
        cond.op = "ne"  # type: ignore[misc]

"""The declared record schema: validation refuses unknown fields and misfit operators, and the evaluator
obeys docs/flows.md's "Comparison semantics" (property-based)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeflow.errors import FlowValidationError
from storeflow.flows import EvalContext, evaluate, load_flow, parse_condition, parse_flow
from storeflow.flows.record_schema import RECORD_SCHEMA, iter_fields

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[3] / "docs" / "flows.md"
PROPERTIES = settings(max_examples=150, deadline=None)


def problems_of(condition: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    with pytest.raises(FlowValidationError) as info:
        parse_condition(condition, "if")
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def holds(condition: dict[str, Any], record: dict[str, Any]) -> bool:
    return evaluate(parse_condition(condition), EvalContext(record=record, now=NOW))


# --- unknown fields ----------------------------------------------------------------------------


def test_cart_total_is_refused_with_the_known_fields_and_a_suggestion() -> None:
    [(path, message, hint)] = problems_of({"field": "cart.total", "gte": 20})
    assert (path, message) == ("if.field", 'unknown field "total" of cart')
    assert hint is not None
    assert hint.startswith('did you mean "value"? known fields of cart: checkout_url, converted, ')
    assert "item_count, items, kind, last_activity_at, order_id, value" in hint


@pytest.mark.parametrize(
    ("field", "message", "hint_part"),
    [
        ("order.totl", 'unknown field "totl" of order', 'did you mean "total"?'),
        ("order.value", 'unknown field "value" of order', 'did you mean "total"?'),
        ("product.name", 'unknown field "name" of product', 'did you mean "title"?'),
        ("profile.tag", 'unknown field "tag" of profile', "write profile.properties.tag"),
        ("profile.emial", 'unknown field "emial" of profile', 'did you mean "email"?'),
        ("run.flow", 'unknown field "flow" of run', "known fields of run: flow_id, id, started_at, variants"),
        ("order.line_items.0.skuu", 'unknown field "skuu" of order.line_items.0', 'did you mean "sku"?'),
        ("cart.items.sku", '"sku" is not a list position: cart.items is a list of records', "cart.items.0"),
        ("profile.email.domain", 'profile.email is text; it has no field "domain"', None),
        ("profile.consent.mail", 'unknown field "mail" of profile.consent', 'did you mean "email"?'),
    ],
)
def test_unknown_fields_are_refused(field: str, message: str, hint_part: str | None) -> None:
    [(path, found, hint)] = problems_of({"field": field, "exists": True})
    assert (path, found) == ("if.field", message)
    if hint_part is not None:
        assert hint is not None and hint_part in hint


@pytest.mark.parametrize(
    "field",
    [
        "profile.properties.anything.at.all",
        "profile.country",  # short for profile.properties.country
        "profile.birthday",
        "event.properties.campaign",
        "event.total",
        "event.items.1.sku",
        "profile.total_spent.EUR",
        "run.variants.subject-test",
        "order.properties.gift_note",
        "order.line_items.-1.price",
        "product.variants.0.sku",
        "cart.converted",
    ],
)
def test_declared_fields_and_free_keys_are_accepted(field: str) -> None:
    parse_condition({"field": field, "exists": True})


def test_every_problem_is_reported_in_nested_conditions_and_history_where_is_free() -> None:
    found = problems_of(
        {
            "all": [
                {"field": "cart.total", "gte": 1},
                {"not": {"field": "order.totl", "gt": 1}},
                {"history": {"event": "order_placed", "where": {"field": "event.anything", "eq": 1}}, "exists": True},
            ]
        }
    )
    assert [(path, message) for path, message, _ in found] == [
        ("if.all[0].field", 'unknown field "total" of cart'),
        ("if.all[1].not.field", 'unknown field "totl" of order'),
    ]


def test_a_history_sum_needs_a_numeric_event_field() -> None:
    parse_condition({"history": {"event": "order_placed"}, "sum": {"of": "total", "gte": 5}})
    found = problems_of({"history": {"event": "order_placed"}, "sum": {"of": "occurred_at", "gte": 5}})
    assert found == [("if.sum.of", "event.occurred_at is a date-time, not a number", "e.g. of: total")]


def test_a_date_trigger_needs_a_date_field() -> None:
    flow = {"id": "f", "name": "F", "steps": [{"exit": True}]}
    parse_flow({**flow, "trigger": {"date": "profile.birthday"}})
    parse_flow({**flow, "trigger": {"date": "profile.created_at"}})
    with pytest.raises(FlowValidationError) as info:
        parse_flow({**flow, "trigger": {"date": "profile.email"}})
    assert [(p.path, p.message) for p in info.value.problems] == [("trigger.date", "profile.email is text, not a date")]


# --- operators that do not fit the type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "message", "hint_part"),
    [
        ({"field": "cart.converted", "gte": 1}, 'cart.converted is true/false: "gte" does not apply to it', "eq"),
        (
            {"field": "profile.tags", "eq": "vip"},
            'profile.tags is a list of texts: "eq" does not apply to it',
            "use contains",
        ),
        ({"field": "profile.email", "gt": 5}, 'profile.email is text: "gt" does not apply to it', "starts_with"),
        (
            {"field": "order.total", "contains": 5},
            'order.total is an exact decimal (money): "contains" does not',
            "gte",
        ),
        ({"field": "profile.created_at", "starts_with": "2026"}, "profile.created_at is a date-time", "before"),
        ({"field": "order.number", "eq": 1001}, "order.number is text; 1001 is not", 'write it as text: "1001"'),
        (
            {"field": "profile.orders_count", "eq": "many"},
            'profile.orders_count is a whole number; "many" is not',
            "e.g. 3",
        ),
        ({"field": "profile.created_at", "eq": 5}, "profile.created_at is a date-time; 5 is not", "ISO date-time"),
        ({"field": "cart.converted", "eq": "yes"}, 'cart.converted is true/false; "yes" is not', "true or false"),
        ({"field": "profile.tags", "contains": 5}, "the items of profile.tags are text; 5 is not", '"5"'),
        ({"field": "profile.tags", "in": ["vip", 2]}, "the items of profile.tags are text; 2 is not", '"2"'),
        (
            {"field": "cart.items", "contains": "TEE"},
            "cart.items is a list of records: compare a field of one item",
            "cart.items.0.product_id",
        ),
        (
            {"field": "profile.total_spent", "gte": 100},
            "profile.total_spent is a mapping of free keys to decimals",
            "contains",
        ),
    ],
)
def test_operators_that_do_not_fit_the_field_are_refused(
    condition: dict[str, Any], message: str, hint_part: str
) -> None:
    [(path, found, hint)] = problems_of(condition)
    op = next(key for key in condition if key != "field")
    assert path == f"if.{op}"
    assert found.startswith(message), found
    assert hint is not None and hint_part in hint, hint


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "cart.converted", "eq": True},
        {"field": "profile.tags", "contains": "vip"},
        {"field": "profile.tags", "in": ["vip", "gold"]},
        {"field": "profile.total_spent", "contains": "EUR"},
        {"field": "order.total", "gte": "19.90"},
        {"field": "profile.created_at", "before": "2026-01-01"},
        {"field": "profile.created_at", "gte": "2026-01-01T00:00:00Z"},
        {"field": "order.number", "in": ["1001", "1002"]},
        {"field": "profile.anything", "gte": 3},
        {"field": "event.flag", "eq": True},
    ],
)
def test_operators_that_fit_are_accepted(condition: dict[str, Any]) -> None:
    parse_condition(condition)


# --- the docs list every declared field ---------------------------------------------------------------


def test_docs_list_every_declared_field_and_no_other() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### The fields", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_.N]+)` \|", section, flags=re.MULTILINE))
    declared = {path for path, _, _ in iter_fields()}
    assert documented == declared
    lead_example = text.split("```yaml", 1)[1].split("```", 1)[0]
    assert "{field: cart.value, gte: 20}" in lead_example
    load_flow(lead_example)


def test_the_schema_declares_every_root() -> None:
    assert set(RECORD_SCHEMA) == {"event", "profile", "order", "cart", "product", "run"}


# --- comparison semantics, property-based ----------------------------------------------------------

OPS_WITH_OPERANDS: list[tuple[str, Any]] = [
    ("eq", "x"), ("ne", "x"), ("gt", 1), ("gte", 1), ("lt", 1), ("lte", 1), ("in", ["x", 1]),
    ("not_in", ["x", 1]), ("contains", "x"), ("not_contains", "x"), ("starts_with", "x"), ("within", "1d"),
    ("older_than", "1d"), ("before", "2030-01-01"), ("after", "2000-01-01"), ("exists", True), ("exists", False),
]  # fmt: skip
NEGATIONS = {"ne": "eq", "not_in": "in", "not_contains": "contains"}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9),
    st.text(max_size=8),
    st.sampled_from(["12.50", "12.5", "0012.5", "1e2", "2026-01-31", "2026-01-31T00:00:00Z", "VIP", "vip"]),
)
json_values = st.one_of(
    json_scalars, st.lists(json_scalars, max_size=4), st.dictionaries(st.text(max_size=4), json_scalars, max_size=3)
)
operands = st.one_of(
    st.booleans(),
    st.integers(-1000, 1000),
    st.sampled_from(["12.5", "vip", "2026-01-31", "a", ""]),
)


@pytest.mark.parametrize("op_operand", OPS_WITH_OPERANDS)
def test_a_missing_value_fails_every_comparison_but_exists_false_and_the_negations(op_operand: tuple[str, Any]) -> None:
    op, operand = op_operand
    records: list[dict[str, Any]] = [{}, {"profile": {"properties": {}}}, {"profile": {"properties": {"x": None}}}]
    for record in records:
        expected = op in NEGATIONS or (op == "exists" and operand is False)
        assert holds({"field": "profile.x", op: operand}, record) is expected
    # and a value that does not fit its declared type reads as missing
    assert holds({"field": "order.total", "exists": True}, {"order": {"total": "not money"}}) is False


@PROPERTIES
@given(value=json_values, negation=st.sampled_from(sorted(NEGATIONS)), operand=operands)
def test_the_negations_are_exactly_not_of_their_operator(value: Any, negation: str, operand: Any) -> None:
    record = {"profile": {"properties": {"x": value}}}
    if negation == "not_in":
        operand = [operand]
    if negation == "not_contains" and operand == "":
        operand = "a"
    positive = holds({"field": "profile.x", NEGATIONS[negation]: operand}, record)
    assert holds({"field": "profile.x", negation: operand}, record) is (not positive)
    assert holds({"not": {"field": "profile.x", NEGATIONS[negation]: operand}}, record) is (not positive)


money = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**7), max_value=10**7)
amount_operands = st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**7), max_value=10**7)


@PROPERTIES
@given(
    total=money,
    operand=amount_operands,
    op=st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
    as_text=st.booleans(),
)
def test_money_compares_as_exact_decimals(total: Decimal, operand: Decimal, op: str, as_text: bool) -> None:
    # the flow's operand is a JSON number (int, or a float whose shortest repr is the decimal) or text
    written: Any = (
        str(operand) if as_text else (int(operand) if operand == operand.to_integral_value() else float(operand))
    )
    expected = {"eq": total == operand, "ne": total != operand, "gt": total > operand, "gte": total >= operand,
                "lt": total < operand, "lte": total <= operand}[op]  # fmt: skip
    assert holds({"field": "order.total", op: written}, {"order": {"total": total}}) is expected
    # a line item's price is stored as text; its declared type (decimal) makes it compare as a number
    item = {"order": {"line_items": [{"price": str(total)}]}}
    assert holds({"field": "order.line_items.0.price", op: written}, item) is expected


def test_decimals_never_go_through_floats() -> None:
    record = {"order": {"total": Decimal("0.3")}}
    assert holds({"field": "order.total", "eq": 0.3}, record)  # 0.1 + 0.2 style errors cannot happen
    assert holds({"field": "order.total", "eq": "0.30"}, record)
    big = {"order": {"total": Decimal("12345678901234567.01")}}
    assert holds({"field": "order.total", "gt": "12345678901234567"}, big)
    assert not holds({"field": "order.total", "eq": "12345678901234567"}, big)


aware = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).flatmap(
    lambda naive: st.integers(-14 * 60, 14 * 60).map(lambda m: naive.replace(tzinfo=timezone(timedelta(minutes=m))))
)


@PROPERTIES
@given(
    value=aware,
    operand=aware,
    op=st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "before", "after"]),
    stored_as_text=st.booleans(),
)
def test_date_times_compare_as_utc_instants(value: datetime, operand: datetime, op: str, stored_as_text: bool) -> None:
    a, b = value.astimezone(UTC), operand.astimezone(UTC)
    expected = {"eq": a == b, "ne": a != b, "gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b,
                "before": a < b, "after": a > b}[op]  # fmt: skip
    stored: Any = value.isoformat() if stored_as_text else value  # declared datetime: text is read as an instant
    assert (
        holds({"field": "profile.created_at", op: operand.isoformat()}, {"profile": {"created_at": stored}}) is expected
    )


@PROPERTIES
@given(day=st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31)), minutes=st.integers(-1440, 1440))
def test_a_date_is_midnight_utc_of_that_day(day: date, minutes: int) -> None:
    instant = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)
    record = {"profile": {"created_at": day}}
    assert holds({"field": "profile.created_at", "eq": instant.isoformat()}, record) is (minutes == 0)
    assert holds({"field": "profile.created_at", "before": instant.isoformat()}, record) is (minutes > 0)
    assert holds({"field": "profile.x", "after": instant.isoformat()}, {"profile": {"x": day.isoformat()}}) is (
        minutes < 0
    )


def test_recency_is_relative_to_now_with_inclusive_bounds() -> None:
    def created(at: datetime) -> dict[str, Any]:
        return {"profile": {"created_at": at}}

    assert holds({"field": "profile.created_at", "within": "1d"}, created(NOW - timedelta(days=1)))
    assert holds({"field": "profile.created_at", "within": "1d"}, created(NOW))
    assert not holds({"field": "profile.created_at", "within": "1d"}, created(NOW + timedelta(seconds=1)))
    assert not holds({"field": "profile.created_at", "older_than": "1d"}, created(NOW - timedelta(days=1)))
    assert holds({"field": "profile.created_at", "older_than": "1d"}, created(NOW - timedelta(days=1, seconds=1)))


tags = st.lists(st.sampled_from(["vip", "VIP", "gold", "new", "b2b"]), max_size=4)
options = st.lists(st.sampled_from(["vip", "VIP", "gold", "x"]), min_size=1, max_size=3)


@PROPERTIES
@given(value=tags, needle=st.sampled_from(["vip", "VIP", "gold", "x"]), wanted=options)
def test_lists_match_when_any_item_matches(value: list[str], needle: str, wanted: list[str]) -> None:
    record = {"profile": {"tags": value}}
    assert holds({"field": "profile.tags", "contains": needle}, record) is (needle in value)
    assert holds({"field": "profile.tags", "in": wanted}, record) is any(tag in wanted for tag in value)
    assert holds({"field": "profile.tags", "not_in": wanted}, record) is (not any(tag in wanted for tag in value))
    assert holds({"field": "profile.tags", "exists": True}, record)  # an empty list is a value


@PROPERTIES
@given(value=st.text(max_size=6), operand=st.text(min_size=1, max_size=6))
def test_text_compares_exactly_and_case_sensitively(value: str, operand: str) -> None:
    record = {"profile": {"email": value}}
    assert holds({"field": "profile.email", "eq": operand}, record) is (value == operand)
    assert holds({"field": "profile.email", "starts_with": operand}, record) is value.startswith(operand)
    assert holds({"field": "profile.email", "contains": operand}, record) is (operand in value)


def test_numbers_and_numeric_text() -> None:
    def free(value: Any, op: str, operand: Any) -> bool:
        return holds({"field": "profile.x", op: operand}, {"profile": {"properties": {"x": value}}})

    assert free("12.50", "eq", 12.5)  # numeric text against a number: as numbers
    assert free(12.5, "eq", "12.50")
    assert free("9", "lt", "10")  # ordering always reads numeric text as numbers
    assert not free("01", "eq", "1")  # two texts: equal only when identical
    assert not free(True, "eq", 1)  # true/false only equal true/false
    assert not free("abc", "gt", 1)  # cannot be ordered: false
    # a field declared as text never compares as a number
    assert not holds({"field": "order.number", "eq": "1001.0"}, {"order": {"number": "1001"}})

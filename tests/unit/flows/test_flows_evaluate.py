"""Evaluating conditions on records and on a profile's history."""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storeflow.errors import ConditionError
from storeflow.flows import EvalContext, evaluate, parse_condition, parse_field_path, resolve

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def check(condition: Any, record: Mapping[str, Any], now: datetime = NOW) -> bool:
    return evaluate(parse_condition(condition), EvalContext(record=record, now=now))


def field(value: Any, op: str, operand: Any) -> bool:
    """Evaluate ``{field: profile.v, op: operand}`` with profile.v = value."""
    return check({"field": "profile.v", op: operand}, {"profile": {"v": value}})


# --- field paths -----------------------------------------------------------------------------


def test_resolution_rules() -> None:
    record = {
        "event": {"type": "order_placed", "properties": {"total": "12.50", "type": "shadowed"}},
        "profile": {"email": "a@b.c", "properties": {"birthday": "1990-05-17", "email": "shadowed"}},
        "order": {"line_items": [{"sku": "A1"}, {"sku": "B2"}]},
        "cart": None,
    }

    def get(path: str) -> Any:
        return resolve(record, parse_field_path(path))

    assert get("event.type") == "order_placed"  # top-level key wins
    assert get("event.total") == "12.50"  # shorthand for event.properties.total
    assert get("event.properties.type") == "shadowed"
    assert get("profile.birthday") == "1990-05-17"
    assert get("profile.email") == "a@b.c"
    assert get("order.line_items.1.sku") == "B2"
    assert get("order.line_items.-1.sku") == "B2"
    assert get("order.line_items.5.sku") is None
    assert get("order.line_items.x") is None
    assert get("order.total") is None  # no shorthand for order
    assert get("cart.total") is None
    assert get("product.id") is None  # root missing from the record
    assert get("event.total.deeper") is None


# --- operators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "operand", "expected"),
    [
        ("eq", 1, False),
        ("ne", 1, True),
        ("gt", 1, False),
        ("gte", 1, False),
        ("lt", 1, False),
        ("lte", 1, False),
        ("in", [1], False),
        ("not_in", [1], True),
        ("contains", "x", False),
        ("not_contains", "x", True),  # the negation of contains, like ne and not_in
        ("starts_with", "x", False),
        ("exists", True, False),
        ("exists", False, True),
        ("within", "1d", False),
        ("older_than", "1d", False),
        ("before", "2030-01-01", False),
        ("after", "2000-01-01", False),
    ],
)
def test_missing_values(op: str, operand: Any, expected: bool) -> None:
    assert check({"field": "profile.missing", op: operand}, {"profile": {}}) is expected
    assert check({"field": "profile.v", op: operand}, {"profile": {"v": None}}) is expected
    assert check({"field": "profile.v", op: operand}, {}) is expected


@pytest.mark.parametrize(
    ("value", "op", "operand", "expected"),
    [
        ("US", "eq", "US", True),
        ("US", "eq", "us", False),
        ("US", "ne", "BR", True),
        (Decimal("10.10"), "eq", 10.1, True),
        (10.1, "eq", Decimal("10.10"), True),
        ("10.10", "eq", 10.1, True),  # numeric text vs a number: as decimals
        ("01", "eq", "1", False),  # two texts: equal only when identical
        (0.1 + 0.2, "eq", 0.3, False),  # floats go through their repr, no rounding
        (Decimal("0.30"), "eq", "0.3", True),  # numeric text vs a number
        (1, "eq", True, False),  # booleans only equal booleans
        (True, "eq", True, True),
        (True, "ne", 1, True),
        (10, "gt", 9.99, True),
        ("10", "gt", "9", True),  # ordering compares numeric text as numbers
        ("500.00", "gte", 500, True),
        (Decimal("499.99"), "gte", "500", False),
        (3, "lt", "3.5", True),
        (3, "lte", 3.0, True),
        ("abc", "gt", 5, False),  # not comparable
        ([1], "gt", 0, False),
        (True, "gt", 0, False),
        ("2026-02-01T00:00:00Z", "gt", "2026-01-31T23:00:00-03:00", False),  # 02:00Z on Feb 1
        (datetime(2026, 2, 1, 3, tzinfo=UTC), "gt", "2026-01-31T23:00:00-03:00", True),
        (datetime(2026, 2, 1, tzinfo=UTC), "eq", "2026-02-01T00:00:00+00:00", True),
        ("SE", "in", ["SE", "NO"], True),
        ("DK", "in", ["SE", "NO"], False),
        ("DK", "not_in", ["SE", "NO"], True),
        ("5", "in", [5, 6], True),
        (["a", "vip"], "in", ["vip"], True),  # a list field is in when any element is
        (["a"], "not_in", ["vip"], True),
        (["vip", "new"], "contains", "vip", True),
        (["vip", "new"], "not_contains", "vip", False),
        ([Decimal("1.0")], "contains", 1, True),
        ("hello world", "contains", "lo w", True),
        ("hello", "contains", 5, False),
        ({"vip": True}, "contains", "vip", True),
        (42, "contains", 4, False),
        (42, "not_contains", 4, True),
        ("+5511999", "starts_with", "+55", True),
        (5511, "starts_with", "55", False),
        ("", "exists", True, True),
        (0, "exists", False, False),
    ],
)
def test_operators(value: Any, op: str, operand: Any, expected: bool) -> None:
    assert field(value, op, operand) is expected


@pytest.mark.parametrize(
    ("value", "op", "operand", "expected"),
    [
        (NOW - timedelta(days=29), "within", "30d", True),
        (NOW - timedelta(days=31), "within", "30d", False),
        (NOW + timedelta(days=1), "within", "30d", False),  # the future is not within the last 30 days
        ((NOW - timedelta(days=2)).isoformat(), "within", "3d", True),
        ("2026-03-01T09:00:00", "within", "1d", True),  # naive text is UTC
        (date(2026, 2, 1), "within", "30d", True),
        (NOW - timedelta(days=31), "older_than", "30d", True),
        (NOW - timedelta(days=29), "older_than", "30d", False),
        ("2020-01-01", "older_than", "1w", True),
        ("not a date", "older_than", "1w", False),
        (12345, "within", "1w", False),
        ("2026-01-15T10:00:00Z", "before", "2026-01-16", True),
        ("2026-01-15T10:00:00Z", "after", "2026-01-16", False),
        (datetime(2026, 1, 16, 1), "after", "2026-01-16", True),
    ],
)
def test_date_time_operators(value: Any, op: str, operand: Any, expected: bool) -> None:
    assert field(value, op, operand) is expected


def test_logic() -> None:
    record = {"profile": {"country": "BR", "tags": ["vip"]}, "cart": {"value": Decimal("80.00")}}
    cond = {
        "all": [
            {"any": [{"field": "profile.country", "eq": "US"}, {"field": "profile.country", "eq": "BR"}]},
            {"not": {"field": "profile.tags", "contains": "blocked"}},
            {"field": "cart.value", "gte": 50},
        ]
    }
    assert check(cond, record) is True
    assert check({"not": cond}, record) is False


# --- history ---------------------------------------------------------------------------------


class InMemoryHistory:
    """A HistoryPort over a list of event dicts."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._events = events
        self.calls: list[tuple[str, str, datetime | None, datetime]] = []

    def events(
        self, profile_id: str, event_type: str, since: datetime | None, until: datetime
    ) -> Sequence[Mapping[str, Any]]:
        self.calls.append((profile_id, event_type, since, until))
        return [
            {k: v for k, v in e.items() if k != "profile_id"}
            for e in self._events
            if e["profile_id"] == profile_id
            and e["type"] == event_type
            and (since is None or e["occurred_at"] >= since)
            and e["occurred_at"] <= until
        ]


def ev(n: int, kind: str, days_ago: float, profile: str = "p1", **props: Any) -> dict[str, Any]:
    return {
        "id": f"e{n}",
        "type": kind,
        "profile_id": profile,
        "occurred_at": NOW - timedelta(days=days_ago),
        "properties": props,
    }


HISTORY = InMemoryHistory(
    [
        ev(1, "order_placed", 400, total="900.00"),
        ev(2, "order_placed", 200, total="300.00"),
        ev(3, "order_placed", 10, total=250),
        ev(4, "order_placed", 1, total="not a number"),
        ev(5, "message_opened", 20, campaign="spring"),
        ev(6, "message_opened", 5, campaign="summer"),
        ev(7, "message_opened", 2, campaign="summer"),
        ev(8, "product_viewed", 10),
        ev(9, "order_placed", 1, profile="p2", total=5000),
    ]
)


def hist(condition: Any, **ctx: Any) -> bool:
    context = EvalContext(
        record={"profile": {"id": "p1"}},
        now=NOW,
        history=HISTORY,
        profile_id=ctx.pop("profile_id", "p1"),
        **ctx,
    )
    return evaluate(parse_condition(condition), context)


def test_history_count_with_where_and_within() -> None:
    opened = {"event": "message_opened", "within": "30d"}
    assert hist({"history": opened, "count": {"eq": 3}})
    assert hist({"history": {**opened, "where": {"field": "event.campaign", "eq": "summer"}}, "count": {"eq": 2}})
    assert hist({"history": {**opened, "within": "7d"}, "count": {"gte": 2}})
    assert not hist({"history": {**opened, "within": "3d"}, "count": {"gte": 2}})
    assert hist(
        {
            "history": {**opened, "where": {"field": "event.properties.campaign", "eq": "x"}},
            "count": {"eq": 0},
        }
    )


def test_history_exists_since_flow_start_and_trigger() -> None:
    cond = {"history": {"event": "order_placed", "since": "flow_start"}, "exists": True}
    assert hist(cond, flow_started_at=NOW - timedelta(days=2))
    assert not hist(cond, flow_started_at=NOW - timedelta(hours=12))
    assert hist({**cond, "exists": False}, flow_started_at=NOW - timedelta(hours=12))
    trig = {"history": {"event": "message_opened", "since": "trigger"}, "count": {"eq": 1}}
    assert hist(trig, trigger_at=NOW - timedelta(days=3))
    iso = {"history": {"event": "order_placed", "since": "2025-06-01T00:00:00Z"}, "count": {"eq": 3}}
    assert hist(iso)
    with pytest.raises(ConditionError, match="flow_start"):
        hist(cond)
    with pytest.raises(ConditionError, match="trigger"):
        hist(trig)


def test_history_sum() -> None:
    year = {"event": "order_placed", "within": "365d"}
    assert hist({"history": year, "sum": {"of": "total", "eq": 550}})  # text amounts count, non-numbers do not
    assert hist({"history": year, "sum": {"of": "event.properties.total", "gte": "549.99"}})
    assert not hist({"history": year, "sum": {"of": "total", "gte": 551}})
    assert hist({"history": {"event": "order_placed"}, "sum": {"of": "total", "eq": 1450}})  # all time
    assert hist({"history": year, "sum": {"of": "missing", "eq": 0}})
    assert hist({"history": year, "sum": {"of": "total", "gte": 5000}}, profile_id="p2")


def test_history_last_seen() -> None:
    assert hist({"history": {"event": "product_viewed"}, "last_seen": {"older_than": "7d"}})
    assert not hist({"history": {"event": "product_viewed"}, "last_seen": {"within": "7d"}})
    assert hist({"history": {"event": "product_viewed"}, "last_seen": {"within": "11d"}})
    # never seen: older_than is true, within is false
    assert hist({"history": {"event": "cart_abandoned"}, "last_seen": {"older_than": "7d"}})
    assert not hist({"history": {"event": "cart_abandoned"}, "last_seen": {"within": "7d"}})


def test_history_asks_the_port_for_the_window() -> None:
    port = InMemoryHistory([])
    cond = parse_condition({"history": {"event": "order_placed", "within": "30d"}, "exists": True})
    evaluate(cond, EvalContext(record={}, now=NOW, history=port, profile_id="p9"))
    assert port.calls == [("p9", "order_placed", NOW - timedelta(days=30), NOW)]


def test_history_needs_a_port_and_a_profile() -> None:
    cond = parse_condition({"history": {"event": "order_placed"}, "exists": True})
    with pytest.raises(ConditionError, match="without a profile"):
        evaluate(cond, EvalContext(record={}, now=NOW))
    with pytest.raises(ConditionError):
        evaluate(cond, EvalContext(record={}, now=NOW, history=HISTORY))


def test_history_inside_logic_short_circuits() -> None:
    cond = parse_condition(
        {
            "any": [
                {"field": "profile.vip", "eq": True},
                {"history": {"event": "order_placed"}, "exists": True},
            ]
        }
    )
    assert evaluate(cond, EvalContext(record={"profile": {"vip": True}}, now=NOW))

"""Tricky cases of the segment SQL compiler, each checked against the Python evaluator on both backends:
exact numbers (numeric text, float JSON numbers, money in IDR/BRL/USD), date text as instants, text
case and LIKE characters, lists, windows, and the cost warnings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from storeflow.engine.records import StoreProfileData, profile_record
from storeflow.flows import EvalContext, evaluate, parse_condition
from storeflow.segments import members_query, scan_warnings
from storeflow.store import Store, open_store
from storeflow.store.tables import events, orders, profiles

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def profile(pid: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": pid, "email": None, "phone": None, "locale": None, "timezone": None, "properties": {}, "tags": [],
        "consent_email": "never_asked", "consent_sms": "never_asked", "consent_push": "never_asked",
        "orders_count": 0, "total_spent": {}, "first_order_at": None, "last_order_at": None,
        "last_active_at": None, "created_at": NOW, "updated_at": NOW, "merged_into": None,
    }
    row.update(values)
    return row


def both(store: Store, document: dict[str, Any], rows: dict[Any, list[dict[str, Any]]]) -> tuple[set[str], set[str]]:
    """(SQL members, Python members) of the condition over the rows."""
    with store.transaction() as tx:
        conn = tx.conn  # type: ignore[attr-defined]
        for table in (profiles, events, orders):
            conn.execute(delete(table))
        for table, table_rows in rows.items():
            conn.execute(insert(table), table_rows)
    condition = parse_condition(document)
    with store.read() as tx:
        conn = tx.conn  # type: ignore[attr-defined]
        query = members_query(condition, now=NOW, store_tz="UTC", stats=None, dialect_name=conn.dialect.name)
        sql = {str(r[0]) for r in conn.execute(query)}
        data = StoreProfileData(tx)
        python = set()
        for row in conn.execute(select(profiles).where(profiles.c.merged_into.is_(None))).mappings():
            ctx = EvalContext(record={"profile": profile_record(dict(row))}, now=NOW, data=data, profile_id=row["id"])
            if evaluate(condition, ctx):
                python.add(row["id"])
    return sql, python


def members(store: Store, document: dict[str, Any], rows: dict[Any, list[dict[str, Any]]]) -> set[str]:
    sql, python = both(store, document, rows)
    assert sql == python
    return sql


VALUES = {"n": 12.5, "t": "12.50", "sp": " 1e1 ", "big": "12.50000000000000000001", "x": "0x10", "f": 0.1,
          "d": "2026-03-02T10:00:00+01:00", "d2": "2026-02-30", "b": True, "s": "VIP", "pct": "a%b"}


def population() -> dict[Any, list[dict[str, Any]]]:
    return {profiles: [profile(k, properties={"v": v}) for k, v in VALUES.items()] + [profile("none")]}


@pytest.mark.parametrize(("document", "expected"), [
    ({"field": "profile.v", "eq": 12.5}, {"n", "t"}),
    ({"field": "profile.v", "eq": "12.50"}, {"n", "t"}),
    ({"field": "profile.v", "gt": 12.5}, {"big"}),
    ({"field": "profile.v", "lte": 10}, {"sp", "f"}),
    ({"field": "profile.v", "eq": 0.1}, {"f"}),
    ({"field": "profile.v", "gt": "0.1"}, {"n", "t", "sp", "big"}),
    ({"field": "profile.v", "ne": 12.5}, set(VALUES) - {"n", "t"} | {"none"}),
    ({"field": "profile.v", "eq": "2026-03-02T09:00:00Z"}, set()),
    ({"field": "profile.v", "gte": "2026-03-02T09:00:00Z"}, {"d"}),
    ({"field": "profile.v", "before": "2026-03-02T09:00:01Z"}, {"d"}),
    ({"field": "profile.v", "within": "1d"}, {"d"}),
    ({"field": "profile.v", "eq": True}, {"b"}),
    ({"field": "profile.v", "eq": 1}, set()),
    ({"field": "profile.v", "eq": "vip"}, set()),
    ({"field": "profile.v", "contains": "%"}, {"pct"}),
    ({"field": "profile.v", "starts_with": "a%"}, {"pct"}),
    ({"field": "profile.v", "contains": "_"}, set()),
    ({"field": "profile.v", "exists": False}, {"none"}),
])
def test_free_properties_compare_like_the_evaluator(store: Store, document: dict[str, Any],
                                                     expected: set[str]) -> None:
    assert members(store, document, population()) == expected


def order(oid: str, pid: str, currency: str, minor: int, days_ago: int) -> dict[str, Any]:
    placed = NOW - timedelta(days=days_ago)
    return {"id": oid, "profile_id": pid, "number": oid, "status": "open", "financial_status": "paid",
            "fulfillment_status": "unfulfilled", "currency": currency, "total_minor": minor, "refunded_minor": 0,
            "tags": [], "shipping_country": None, "line_items": [{"product_id": "p", "sku": "S", "quantity": 2}],
            "properties": {"discount_codes": [{"code": "SAVE"}]}, "placed_at": placed, "updated_at": placed}


def test_order_money_is_exact_per_currency_minor_units(store: Store) -> None:
    rows = {profiles: [profile("idr"), profile("brl"), profile("usd")],
            orders: [order("o1", "idr", "IDR", 15000050, 1), order("o2", "brl", "BRL", 1050, 1),
                     order("o3", "usd", "USD", 1049, 40)]}
    assert members(store, {"orders": {"where": {"field": "order.total", "gte": 10.5}}, "exists": True},
                   rows) == {"idr", "brl"}
    assert members(store, {"orders": {"where": {"field": "order.total", "eq": "150000.5"}}, "exists": True},
                   rows) == {"idr"}
    assert members(store, {"orders": {"within": "30d"}, "sum": {"of": "total", "gte": 10.5}}, rows) == {"idr", "brl"}
    assert members(store, {"orders": {}, "avg": {"of": "total", "lt": 10.5}}, rows) == {"usd"}
    assert members(store, {"orders": {"where": {"field": "order.discount_codes", "contains": "SAVE"}},
                           "count": {"eq": 1}}, rows) == {"idr", "brl", "usd"}
    assert members(store, {"orders": {"where": {"field": "order.item_count", "eq": 2}}, "exists": True},
                   rows) == {"idr", "brl", "usd"}


def test_event_sums_are_exact_over_numbers_and_numeric_text(store: Store) -> None:
    def event(eid: str, price: Any) -> dict[str, Any]:
        return {"id": eid, "type": "viewed", "profile_id": "p", "occurred_at": NOW - timedelta(hours=1),
                "received_at": NOW, "source": "api", "idempotency_key": eid, "properties": {"price": price}}

    rows = {profiles: [profile("p")], events: [event("e1", 0.1), event("e2", "0.2"), event("e3", "x"),
                                               event("e4", True)]}
    assert members(store, {"history": {"event": "viewed"}, "sum": {"of": "price", "eq": 0.3}}, rows) == {"p"}
    assert members(store, {"history": {"event": "viewed"}, "max": {"of": "price", "eq": 0.2}}, rows) == {"p"}


def test_scan_warnings_name_unbounded_histories_of_high_volume_types() -> None:
    condition = parse_condition({"all": [
        {"history": {"event": "page_viewed"}, "count": {"gte": 3}},
        {"history": {"event": "page_viewed", "within": "7d"}, "exists": True},
        {"not": {"history": {"event": "order_placed"}, "exists": True}},
    ]})
    [warning] = scan_warnings(condition)
    assert warning.startswith("condition.all[0].history: no window over page_viewed")
    counted = scan_warnings(condition, {"page_viewed": 10, "order_placed": 2_000_000})
    assert [w.split(":")[0] for w in counted] == ["condition.all[2].not.history"]
    assert "2,000,000 stored order_placed events" in counted[0]

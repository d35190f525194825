"""Bounds on event input, checked before anything large is built (storeflow.model.bounds)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storeflow.engine.changes import parse_change
from storeflow.model.bounds import check_document, check_occurred_at
from storeflow.model.events import EventIn, normalize_event
from storeflow.model.money import parse_amount
from storeflow.model.profiles import normalize_email

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def change_error(etype: str, props: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as info:
        parse_change(normalize_event(EventIn.model_validate({"type": etype, "properties": props}), NOW))
    return str(info.value)


@pytest.mark.parametrize("text", ["1e1000000", "1e999999999", "-1e1000000", "1" * 5000])
def test_huge_amounts_are_refused_without_building_them(text: str) -> None:
    start = time.process_time()
    with pytest.raises(ValueError, match=r"too large|not an amount"):
        parse_amount(text)
    assert time.process_time() - start < 0.05


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "sNaN", float("inf"), float("nan")])
def test_non_finite_amounts_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_amount(value)


def test_amounts_within_bounds_stay_exact() -> None:
    assert parse_amount("99999999999999.99") == Decimal("99999999999999.99")
    assert parse_amount(19.9) == Decimal("19.9")
    assert parse_amount(" 7 ") == Decimal(7)
    with pytest.raises(ValueError, match="below 10"):
        parse_amount(10**14)


@pytest.mark.parametrize(("props", "where"), [
    ({"sku": "s", "quantity": "1e1000000"}, "properties.quantity"),
    ({"sku": "s", "quantity": "Infinity"}, "properties.quantity"),
    ({"sku": "s", "quantity": 2**63}, "properties.quantity"),
    ({"sku": "s", "quantity": 2**31}, "properties.quantity"),  # stock is a 32-bit column
    ({"sku": "s", "delta": "-1e30"}, "properties.delta"),
])
def test_stock_numbers_out_of_range_name_their_field(props: dict[str, Any], where: str) -> None:
    start = time.process_time()
    assert change_error("inventory_changed", props).startswith(where)
    assert time.process_time() - start < 0.05


@pytest.mark.parametrize(("props", "where"), [
    ({"order_id": "o", "currency": "USD", "total": "1e20"}, "properties.total"),
    ({"order_id": "o", "currency": "USD", "total": "-5"}, "properties.total"),
    ({"order_id": "o", "currency": "USD", "total": -0.01}, "properties.total"),
    ({"order_id": "o", "items": [{"sku": "a", "quantity": -1}]}, "properties.items[0].quantity"),
    ({"order_id": "o", "items": [{"sku": "a", "price": "-3"}]}, "properties.items[0].price"),
])
def test_negative_or_overflowing_order_numbers_are_refused(props: dict[str, Any], where: str) -> None:
    assert change_error("order_placed", props).startswith(where)


def test_a_cart_valued_from_its_items_is_refused_when_the_value_cannot_be_stored() -> None:
    items = [{"sku": "a", "price": "99999999999999", "quantity": 10**9}]
    assert change_error("cart_updated", {"cart_id": "c", "currency": "USD", "items": items}).startswith(
        "properties.items")
    finer = [{"sku": "a", "price": "19.999", "quantity": 1}]
    assert "decimal places" in change_error("cart_updated", {"cart_id": "c", "currency": "USD", "items": finer})


@pytest.mark.parametrize(("doc", "where"), [
    ({"x": float("nan")}, "properties.x"),
    ({"x": float("inf")}, "properties.x"),
    ({"a": {"b": [1, 2**64]}}, "properties.a.b[1]"),
    ({"a": "\ud800"}, "properties.a"),
    ({"a": "nul\x00"}, "properties.a"),
    ({"\udfff": 1}, "properties (a key)"),
    ({"a": "x" * 70_000}, "properties.a"),
])
def test_documents_refuse_what_storage_cannot_hold(doc: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError) as info:
        check_document(doc, "properties")
    assert str(info.value).startswith(where)


def test_documents_are_bounded_in_depth_and_size() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValueError, match="nested more than"):
        check_document(deep, "properties")
    with pytest.raises(ValueError, match="more than 5000 values"):
        check_document({"list": list(range(10_000))}, "properties")
    check_document({"emoji": "\U0001f600", "pt": "São Paulo", "n": -(2**63), "f": 1e308}, "properties")


@pytest.mark.parametrize("text", ["0190-07-27T20:28:10Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00",
                                  "1899-12-31T23:59:59Z"])
def test_implausible_years_are_refused_before_conversion(text: str) -> None:
    with pytest.raises(ValueError, match=r"^occurred_at: "):
        check_occurred_at(datetime.fromisoformat(text), NOW, 300)


def test_times_beyond_the_clock_skew_allowance_are_refused() -> None:
    assert check_occurred_at(NOW + timedelta(seconds=299), NOW + timedelta(seconds=300), 300) > NOW
    with pytest.raises(ValueError, match="301 s in the future, beyond the 300 s of clock skew"):
        check_occurred_at(NOW + timedelta(seconds=301), NOW + timedelta(seconds=300), 300)
    ev = EventIn.model_validate({"type": "inventory_changed", "occurred_at": "2099-01-01T00:00:00Z"})
    with pytest.raises(ValueError, match=r"^occurred_at: .*max_future_skew_s"):
        normalize_event(ev, NOW)
    assert normalize_event(ev, NOW, max_future_skew_s=3e9).occurred_at.year == 2099
    assert normalize_event(ev, NOW, max_future_skew_s=1e300).occurred_at.year == 2099  # no calendar overflow


@pytest.mark.parametrize("bad", ["a@example..com", "a\x00b@example.com", "a@b", "a b@example.com", ".a@example.com",
                                 "a@-example.com", "a@@example.com", "a@example.com\x00", "\ud800@example.com",
                                 "a@example.123", "x" * 65 + "@example.com"])
def test_malformed_emails_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an email address"):
        normalize_email(bad)


@pytest.mark.parametrize("good", ["Ana@Example.com", "a+tag@sub.example.co.uk", "josé@exämple.com.br",
                                  "o'neil@example.ie"])
def test_ordinary_emails_are_accepted(good: str) -> None:
    assert normalize_email(good) == good.lower()


def test_segment_revenue_keeps_its_name_beside_subtotal() -> None:
    ev = EventIn.model_validate({"event": "Order Completed", "properties": {
        "order_id": "o", "subtotal": 22.50, "revenue": 25.00, "currency": "USD", "products": [{"name": "Uno"}]}})
    props = normalize_event(ev, NOW).properties
    assert (props["subtotal"], props["revenue"], props["items"]) == (22.5, 25.0, [{"title": "Uno"}])

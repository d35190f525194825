"""Ingest: idempotency, out-of-order events, state updates, profile resolution, bad input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from helpers import apply, profile_of

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock

ORDER = {"type": "order_placed", "email": "ana@example.com",
         "properties": {"order_id": "o1", "total": "150000", "currency": "IDR",
                        "items": [{"product_id": "p1", "sku": "TEE", "quantity": 2, "price": "75000"}]}}


def test_the_same_event_twice_is_stored_and_acted_on_once(sf: Storeflow) -> None:
    apply(sf, "id: f\nname: F\ntrigger: {event: order_placed}\nsteps:\n  - action: set_property\n"
              "    property: n\n    increment: 1\n")
    first = sf.ingest([{**ORDER, "id": "shop-1"}, {**ORDER, "id": "shop-1"}])
    again = sf.ingest([{**ORDER, "id": "shop-1"}])
    assert [r.status for r in first] == ["accepted", "duplicate"]
    assert again[0].status == "duplicate"
    sf.drain()
    ana = profile_of(sf, "ana@example.com")
    assert ana["properties"]["n"] == 1
    assert ana["orders_count"] == 1
    assert ana["total_spent"] == {"IDR": "150000.00"}
    assert len(ana["timeline"]) == 1


def test_events_without_an_id_dedupe_on_identical_content(sf: Storeflow) -> None:
    results = sf.ingest([ORDER]) + sf.ingest([ORDER])
    assert [r.status for r in results] == ["accepted", "duplicate"]


def test_out_of_order_order_events_give_the_right_state(sf: Storeflow, clock: VirtualClock) -> None:
    t = clock.now()
    paid = {"type": "order_paid", "email": "ana@example.com", "occurred_at": (t - timedelta(minutes=5)).isoformat(),
            "properties": {"order_id": "o2", "currency": "BRL"}}
    placed = {"type": "order_placed", "email": "ana@example.com",
              "occurred_at": (t - timedelta(minutes=10)).isoformat(),
              "properties": {"order_id": "o2", "total": "99.90", "currency": "BRL"}}
    assert [r.status for r in sf.ingest([paid, placed])] == ["accepted", "accepted"]
    ana = profile_of(sf, "ana@example.com")
    order = ana["orders"][0]
    assert order["financial_status"] == "paid"
    assert order["total_minor"] == 9990
    assert ana["total_spent"] == {"BRL": "99.90"}
    assert ana["first_order_at"] == t - timedelta(minutes=10)


def test_older_stock_and_product_updates_do_not_overwrite_newer(sf: Storeflow, clock: VirtualClock) -> None:
    t = clock.now()
    new = {"type": "product_updated", "occurred_at": t.isoformat(),
           "properties": {"product_id": "p1", "title": "Tee v2", "currency": "USD",
                          "variants": [{"variant_id": "v1", "sku": "TEE", "price": "20.00"}]}}
    old = {"type": "product_updated", "occurred_at": (t - timedelta(hours=1)).isoformat(),
           "properties": {"product_id": "p1", "title": "Tee v1"}}
    stock_new = {"type": "inventory_changed", "occurred_at": t.isoformat(),
                 "properties": {"variant_id": "v1", "location": "jakarta", "quantity": 7}}
    stock_old = {"type": "inventory_changed", "occurred_at": (t - timedelta(hours=1)).isoformat(),
                 "properties": {"variant_id": "v1", "location": "jakarta", "quantity": 50}}
    sf.ingest([new, old, stock_new, stock_old])
    with sf.store.transaction() as tx:
        product = tx.get_product("p1")
        assert product is not None
        assert product["title"] == "Tee v2"
        assert tx.product_stock("p1") == 7


def test_stock_crossing_zero_derives_stock_out_and_restored(sf: Storeflow) -> None:
    sf.ingest([{"type": "inventory_changed", "id": "a", "properties": {"sku": "MUG", "product_id": "mug",
                                                                       "quantity": 3}}])
    sf.ingest([{"type": "inventory_changed", "id": "b", "properties": {"sku": "MUG", "delta": -3}}])
    sf.ingest([{"type": "inventory_changed", "id": "c", "properties": {"sku": "MUG", "delta": 10}}])
    with sf.store.transaction() as tx:
        types = [r[0] for r in tx.conn.exec_driver_sql("SELECT type FROM events ORDER BY received_at, type")]
    assert "stock_out" in types
    assert "stock_restored" in types


def test_segment_spec_names_map_to_canonical_events(sf: Storeflow) -> None:
    result = sf.ingest([{"event": "Order Completed", "userId": "42", "email": "bo@example.com",
                         "properties": {"order_id": "s1", "total": "10.00", "currency": "USD",
                                        "products": [{"product_id": "p", "name": "Cap", "price": "10.00"}]}}])
    assert result[0].status == "accepted"
    bo = profile_of(sf, "bo@example.com")
    assert bo["timeline"][0]["type"] == "order_placed"
    assert bo["orders"][0]["line_items"][0]["title"] == "Cap"
    assert ("customer", "api:42") in {(i["kind"], i["value"]) for i in bo["identities"]}


def test_bad_items_are_rejected_with_the_field_and_the_rest_accepted(sf: Storeflow) -> None:
    results = sf.ingest([
        {"type": "order_placed", "email": "a@example.com", "properties": {"order_id": "x", "total": "abc",
                                                                         "currency": "USD"}},
        {"type": "order_placed", "email": "a@example.com", "properties": {"order_id": "y", "total": "1.234",
                                                                         "currency": "USD"}},
        {"type": "order placed!", "email": "a@example.com"},
        {"type": "customer_updated", "phone": "12"},
        {"type": "customer_updated", "email": "ok@example.com", "profile": {"timezone": "Mars/Base"}},
        {"type": "customer_updated", "email": "ok@example.com", "profile": {"timezone": "Asia/Jakarta"}},
    ])
    assert [r.status for r in results] == ["rejected"] * 5 + ["accepted"]
    assert "properties.total" in (results[0].error or "")
    assert "decimal places" in (results[1].error or "")
    assert "type" in (results[2].error or "")
    assert "phone" in (results[3].error or "")
    assert "profile.timezone" in (results[4].error or "")
    assert profile_of(sf, "ok@example.com")["timezone"] == "Asia/Jakarta"


def test_carts_convert_when_the_customer_orders(sf: Storeflow) -> None:
    sf.ingest([{"type": "checkout_started", "email": "c@example.com",
                "properties": {"checkout_id": "ck1", "value": "59.90", "currency": "BRL",
                               "checkout_url": "https://shop.example/c/ck1"}}])
    sf.ingest([{"type": "order_placed", "email": "c@example.com",
                "properties": {"order_id": "o9", "checkout_id": "ck1", "total": "59.90", "currency": "BRL"}}])
    with sf.store.transaction() as tx:
        cart = tx.get_cart("ck1")
    assert cart is not None
    assert cart["order_id"] == "o9"
    assert cart["value_minor"] == 5990
    assert Decimal("59.90") == Decimal(cart["value_minor"]) / 100


def test_consent_follows_subscribe_events(sf: Storeflow) -> None:
    sf.ingest([{"type": "subscribed", "email": "d@example.com", "properties": {"channel": "sms"}}])
    assert profile_of(sf, "d@example.com")["consent_sms"] == "subscribed"
    sf.ingest([{"type": "unsubscribed", "email": "d@example.com", "properties": {"channel": "sms"}}])
    assert profile_of(sf, "d@example.com")["consent_sms"] == "unsubscribed"


def test_identify_with_changed_profile_fields_is_not_a_duplicate(sf: Storeflow) -> None:
    first = sf.identify({"email": "id@example.com", "profile": {"plan": "free"}})
    second = sf.identify({"email": "id@example.com", "profile": {"plan": "pro"}})
    again = sf.identify({"email": "id@example.com", "profile": {"plan": "pro"}})
    assert (first.status, second.status, again.status) == ("accepted", "accepted", "duplicate")
    assert profile_of(sf, "id@example.com")["properties"]["plan"] == "pro"


def test_amounts_without_a_currency_use_the_store_currency(make_sf: object) -> None:
    sf: Storeflow = make_sf(currency="IDR")  # type: ignore[operator]
    result = sf.ingest([{"type": "order_placed", "email": "rp@example.com",
                         "properties": {"order_id": "r1", "total": "250000"}}])[0]
    assert result.status == "accepted"
    ana = profile_of(sf, "rp@example.com")
    assert ana["total_spent"] == {"IDR": "250000.00"}
    assert ana["timeline"][0]["properties"]["currency"] == "IDR"

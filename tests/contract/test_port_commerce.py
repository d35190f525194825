"""CommercePort on both backends: products, variants, stock, orders, carts."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, cart_row, order_row

from storeflow.store import Store, open_store


def test_variants_and_stock(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.upsert_product("prod", T0, T0, title="Shirt")
        tx.upsert_variant("v2", "prod", T0, sku="SKU-2")
        tx.upsert_variant("v1", "prod", T0, sku="SKU-1")
        tx.upsert_variant("v1", "prod", T0, sku="SKU-1B")  # an update, not a second row
        assert tx.set_stock("v1", "berlin", T0, T0 + timedelta(hours=2), quantity=5)
        assert not tx.set_stock("v1", "berlin", T0, T0 + timedelta(hours=1), quantity=99)  # older: ignored
        assert tx.set_stock("v1", "berlin", T0, T0, delta=-2)  # deltas always apply
        assert tx.set_stock("v2", "paris", T0, T0, quantity=4)
    with store.read() as tx:
        v1 = tx.get_variant("v1")
        assert v1 is not None and v1["sku"] == "SKU-1B"
        assert tx.get_variant("nope") is None
        found = tx.variant_by_sku("SKU-2")
        assert found is not None and found["id"] == "v2"
        assert tx.variant_by_sku("SKU-1") is None
        assert [v["id"] for v in tx.product_variants("prod")] == ["v1", "v2"]
        assert tx.product_stock("prod") == 3 + 4
        assert tx.product_stock("nope") == 0


def test_orders_insert_update_and_list(store: Store) -> None:
    later = T0 + timedelta(days=1)
    with store.transaction() as tx:
        tx.insert_order(order_row("o1"))
        tx.insert_order(order_row("o2", placed_at=later))
        tx.update_order("o1", financial_status="paid", refunded_minor=100)
    with store.read() as tx:
        o1 = tx.get_order("o1")
        assert o1 is not None and (o1["financial_status"], o1["refunded_minor"]) == ("paid", 100)
        assert tx.get_order("nope") is None
        assert [o["id"] for o in tx.profile_orders("p")] == ["o2", "o1"]
        assert [o["id"] for o in tx.profile_orders("p", limit=1)] == ["o2"]


def test_carts_open_latest_and_convert(store: Store) -> None:
    t1, t2, t3 = (T0 + timedelta(minutes=i) for i in (1, 2, 3))
    with store.transaction() as tx:
        tx.insert_cart(cart_row("c1", last_activity_at=t1))
        tx.insert_cart(cart_row("c2", last_activity_at=t2))
        tx.insert_cart(cart_row("c3", profile_id=None))
        tx.update_cart("c1", last_activity_at=t3, checkout_url="https://shop.example/c1")
        latest = tx.latest_open_cart("p")
        assert latest is not None and latest["id"] == "c1"
        # with no cart ids: the profile's open carts last active by ``at``
        assert tx.convert_carts("p", [], "o1", t2) == 1  # c2 (c1 was active after t2)
        assert tx.convert_carts(None, ["c3"], "o2", t3) == 1
        assert tx.convert_carts(None, [], "o3", t3) == 0
    with store.read() as tx:
        c1, c2, c3 = (tx.get_cart(c) for c in ("c1", "c2", "c3"))
        assert c1 is not None and c2 is not None and c3 is not None
        assert (c1["converted_at"], c1["checkout_url"]) == (None, "https://shop.example/c1")
        assert (c2["converted_at"], c2["order_id"]) == (t2, "o1")
        assert c3["order_id"] == "o2"
        assert tx.get_cart("nope") is None


def test_product_updates_ignore_older_source_times(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        assert tx.upsert_product("p1", T0, T0 + timedelta(hours=2), title="New")
        assert not tx.upsert_product("p1", T0, T0 + timedelta(hours=1), title="Old")
        product = tx.get_product("p1")
    assert product is not None
    assert product["title"] == "New"
    store.close()


def test_stock_deltas_saturate_at_the_column_range_instead_of_overflowing(store: Store) -> None:
    """Each event's delta is bounded (10^9), but many of them add up: the sum saturates at
    ±(2^31 - 1), the stock column's range on PostgreSQL, and never fails the batch."""
    from storeflow.store.sql.commerce_ops import STOCK_MAX

    with store.transaction() as tx:
        for product, variant in (("up", "vu"), ("down", "vd")):
            tx.upsert_product(product, T0, T0, title=product)
            tx.upsert_variant(variant, product, T0, sku=variant)
        for _ in range(3):
            assert tx.set_stock("vu", "main", T0, T0, delta=10**9)
            assert tx.set_stock("vd", "main", T0, T0, delta=-(10**9))
    with store.read() as tx:
        assert (tx.product_stock("up"), tx.product_stock("down")) == (STOCK_MAX, -STOCK_MAX)
    with store.transaction() as tx:
        assert tx.set_stock("vd", "main", T0, T0, delta=5)
    with store.read() as tx:
        assert tx.product_stock("down") == -STOCK_MAX + 5

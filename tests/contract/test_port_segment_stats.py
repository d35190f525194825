"""SegmentStatsPort on both backends: customers ranked by recency, frequency and spend; the meta row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from tests.contract.helpers import T0

from storeflow.store import Store

DAY = timedelta(days=1)


def _customers(store: Store) -> None:
    with store.transaction() as tx:
        # id, orders, days since the last order, spend in IDR (and other currencies)
        for pid, orders, days, spent in (("a", 3, 10, {"IDR": "150000.50"}), ("b", 1, 40, {"IDR": "90000"}),
                                         ("c", 5, 2, {"IDR": "1200000", "USD": "9.99"}), ("d", 2, 40, {"USD": "20"}),
                                         ("e", 1, 100, {"IDR": "5"})):
            tx.create_profile(pid, T0, orders_count=orders, last_order_at=T0 - days * DAY,
                              first_order_at=T0 - 400 * DAY, total_spent=spent)
        tx.create_profile("prospect", T0)  # no order: not a customer
        tx.create_profile("merged", T0, orders_count=9, last_order_at=T0, total_spent={"IDR": "999999999"},
                          merged_into="a")


def test_customers_ranked_by_each_metric(store: Store) -> None:
    _customers(store)
    with store.read() as tx:
        assert tx.count_customers() == 5
        # recency: the latest order first (ties by profile id: b before d)
        assert tx.customer_values_at("recency", "IDR", [1, 2, 3, 4, 5, 6]) == {
            1: T0 - 2 * DAY, 2: T0 - 10 * DAY, 3: T0 - 40 * DAY, 4: T0 - 40 * DAY, 5: T0 - 100 * DAY}
        assert tx.customer_values_at("frequency", "IDR", [1, 3, 5, 0]) == {1: 1, 3: 2, 5: 5}
        assert tx.customer_values_at("monetary", "IDR", [1, 2, 3, 4, 5]) == {
            1: Decimal(0), 2: Decimal(5), 3: Decimal(90000), 4: Decimal("150000.50"), 5: Decimal(1200000)}
        assert tx.customer_values_at("monetary", "USD", [5]) == {5: Decimal(20)}
        assert tx.customer_values_at("frequency", "IDR", []) == {}
        with pytest.raises(ValueError, match="unknown metric"):
            tx.customer_values_at("loyalty", "IDR", [1])


def test_meta_value_set_and_changed(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.set_meta_value("segment_stats", '{"a": 1}') is True
        assert tx.set_meta_value("segment_stats", '{"a": 1}') is False
        assert tx.set_meta_value("segment_stats", '{"a": 2}') is True
        assert tx.meta_value("segment_stats") == '{"a": 2}'

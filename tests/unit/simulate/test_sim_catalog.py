"""The demo catalog: seeded, exact prices in the shop's style, stock in two locations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from storeflow.model.money import to_minor
from storeflow.simulate.catalog import (
    LOCATIONS,
    build_catalog,
    check_currency_supported,
    product_event,
    shop_price,
    stock_events,
)


def test_same_seed_same_catalog_and_another_seed_differs() -> None:
    assert build_catalog(7, "IDR", 120) == build_catalog(7, "IDR", 120)
    assert build_catalog(7, "IDR", 120) != build_catalog(8, "IDR", 120)


@pytest.mark.parametrize("currency", ["IDR", "BRL", "USD"])
def test_products_variants_prices_and_stock(currency: str) -> None:
    catalog = build_catalog(3, currency, 300, expected_units=400)
    assert len(catalog) == 300
    assert len({p.title for p in catalog.products}) == 300
    assert len({p.product_id for p in catalog.products}) == 300
    skus = [v.sku for p in catalog.products for v in p.variants]
    assert len(skus) == len(set(skus))
    assert sum(p.popularity for p in catalog.products) == pytest.approx(1.0)
    assert {p.product_type for p in catalog.products} >= {"Apparel", "Coffee", "Home"}
    for product in catalog.products:
        assert 1 <= len(product.variants) <= 4
        assert product.handle and product.url.endswith(product.handle)
        for v in product.variants:
            assert isinstance(v.price, Decimal) and v.price > 0
            to_minor(v.price, currency)  # exact in the currency's minor units
            assert set(v.stock) == set(LOCATIONS)
            assert all(units >= 0 for units in v.stock.values())
    assert any(v.stock["store"] > 0 for p in catalog.products for v in p.variants)


def test_prices_look_like_shop_prices() -> None:
    idr = build_catalog(7, "IDR", 80)
    brl = build_catalog(7, "BRL", 80)
    usd = build_catalog(7, "USD", 80)
    assert all(v.price % 1000 == 0 and v.price.as_tuple().exponent == 0 for p in idr.products for v in p.variants)
    assert all(str(v.price).endswith(".90") for p in brl.products for v in p.variants)
    assert all(str(v.price)[-3:] in (".99", ".00") for p in usd.products for v in p.variants)
    assert shop_price(Decimal("19.50"), "USD", charm=True) == Decimal("19.99")
    assert shop_price(Decimal("19.50"), "USD", charm=False) == Decimal("20.00")
    assert shop_price(Decimal("24"), "BRL") == Decimal("119.90")
    assert shop_price(Decimal("24"), "IDR") == Decimal("379000")


def test_money_stays_exact_in_events() -> None:
    catalog = build_catalog(1, "BRL", 5)
    event = product_event(catalog.products[0], "BRL", datetime(2026, 3, 1, tzinfo=UTC))
    for sent, variant in zip(event["properties"]["variants"], catalog.products[0].variants, strict=True):
        assert isinstance(sent["price"], str)
        assert Decimal(sent["price"]) == variant.price
    total = sum((v.price * 3 for p in catalog.products for v in p.variants), Decimal(0))
    assert total == Decimal(str(total))  # no float anywhere
    assert total.as_tuple().exponent == -2


def test_stock_events_count_each_location_that_holds_stock() -> None:
    catalog = build_catalog(5, "USD", 40, expected_units=200)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    for product in catalog.products:
        events = stock_events(product, at)
        expected = {(v.variant_id, loc): n for v in product.variants for loc, n in v.stock.items() if n}
        assert {(e["properties"]["variant_id"], e["properties"]["location"]): e["properties"]["quantity"]
                for e in events} == expected


def test_stock_follows_expected_demand() -> None:
    small = build_catalog(7, "USD", 100, expected_units=50)
    large = build_catalog(7, "USD", 100, expected_units=5000)
    units = [sum(v.units for p in c.products for v in p.variants) for c in (small, large)]
    assert units[1] > units[0] * 10
    assert any(sum(v.units for v in p.variants) <= 5 for p in small.products)  # some start thin


def test_currencies_outside_the_demo_are_refused() -> None:
    assert check_currency_supported(" idr ") == "IDR"
    with pytest.raises(ValueError, match="not a demo currency"):
        build_catalog(7, "EUR", 10)

"""Rows two writers may insert at once: the second gets LostRace (retry the batch), on both backends.
Orders and carts take the same path as events, identities and runs: ``order_placed`` and
``order_paid`` for a new order at two API processes, or two cart events for a new cart."""

from __future__ import annotations

import pytest
from tests.contract.helpers import T0, cart_row, order_row

from storeflow.errors import LostRace
from storeflow.store import Store


@pytest.mark.parametrize("kind", ["order", "cart"])
def test_an_order_or_cart_stored_meanwhile_is_a_lost_race(store: Store, kind: str) -> None:
    row, insert = (order_row("o1"), "insert_orders") if kind == "order" else (cart_row("c1"), "insert_carts")
    with store.transaction() as tx:
        tx.create_profile("p", T0)
        getattr(tx, insert)([row])
    with pytest.raises(LostRace, match="another writer"), store.transaction() as tx:
        getattr(tx, insert)([dict(row)])
    with store.read() as tx:
        assert (tx.get_order("o1") if kind == "order" else tx.get_cart("c1")) is not None

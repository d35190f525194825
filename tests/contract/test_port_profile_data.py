"""ProfileDataPort on both backends: one profile's orders, carts and messages for the Python evaluator."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, cart_row, message_row, order_row

from storeflow.store import Store

HOUR = timedelta(hours=1)


def test_every_order_cart_and_message_of_one_profile(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_order(order_row("o2", "p", placed_at=T0 + HOUR))
        tx.insert_order(order_row("o1", "p", placed_at=T0))
        tx.insert_order(order_row("o3", "q"))
        tx.insert_cart(cart_row("c1", "p", last_activity_at=T0 + HOUR))
        tx.insert_cart(cart_row("c0", "p"))
        tx.insert_cart(cart_row("c9", "q"))
        tx.convert_carts(None, ["c0"], "o1", T0)
        tx.enqueue(message_row("m1", profile_id="p", channel="email", created_at=T0))
        tx.enqueue(message_row("m2", profile_id="p", channel="sms", created_at=T0 + HOUR))
        tx.enqueue(message_row("m3", profile_id="q", channel="email"))
    with store.read() as tx:
        assert [o["id"] for o in tx.orders_of_profile("p")] == ["o1", "o2"]
        assert [(c["id"], c["converted_at"]) for c in tx.carts_of_profile("p")] == [("c0", T0), ("c1", None)]
        assert [m["id"] for m in tx.messages_of_profile("p", None)] == ["m1", "m2"]
        assert [m["id"] for m in tx.messages_of_profile("p", "sms")] == ["m2"]
        assert tx.orders_of_profile("nobody") == tx.carts_of_profile("nobody") == []
        assert tx.messages_of_profile("nobody", None) == []

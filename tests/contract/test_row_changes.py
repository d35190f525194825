"""RowChanges (storeflow.store.row_changes), the one way ingest's batch view and the worker's batch
write what they did to existing rows, on both backends: patches replayed on the rows as locked at
flush, rows locked in the one canonical order, profiles' order summaries from the orders table."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from tests.contract.helpers import T0, cart_row, order_row

from storeflow.store import Store
from storeflow.store.base import StoreTx
from storeflow.store.row_changes import Increment, OrderSummary, RowChanges, SetColumns, SetKeys, Tags


class Recording:
    """The transaction, with the calls RowChanges makes on it written down."""

    def __init__(self, tx: StoreTx) -> None:
        self.tx, self.calls = tx, list[tuple[str, str, list[str]]]()

    def rows_by_id(self, kind: str, ids: Iterable[str], *, lock: bool = False,
                   columns: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        ids = list(ids)
        self.calls.append(("lock" if lock else "read", kind, ids))
        return self.tx.rows_by_id(kind, ids, lock=lock, columns=columns)

    def update_rows(self, kind: str, rows: list[dict[str, Any]]) -> None:
        self.calls.append(("write", kind, [r["id"] for r in rows]))
        self.tx.update_rows(kind, rows)

    def order_aggregates_of(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self.tx.order_aggregates_of(profile_ids)


def _rows(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_profile("p2", T0, properties={"a": 1, "visits": 2}, tags=["x"])
        tx.create_profile("p1", T0)
        tx.insert_order(order_row("o1", "p2", total_minor=1250))
        tx.insert_order(order_row("o0", "p1"))
        tx.insert_cart(cart_row("c1", "p2"))
        tx.upsert_product("prod", T0, T0, title="Mug")


def test_patches_are_replayed_on_the_rows_as_they_are_when_locked(store: Store) -> None:
    _rows(store)
    later = T0 + timedelta(hours=1)
    changes = RowChanges()
    changes.add("profile", "p2", SetKeys({"b": 2}), Increment("visits", 1), Tags(add=("y",), remove=("x",)),
                SetColumns({"locale": "de-DE"}), OrderSummary())
    changes.add("order", "o1", SetColumns({"financial_status": "paid"}), Tags(add=("vip",)))
    changes.add("product", "prod", SetColumns({"status": "hidden"}))
    with store.transaction() as tx:  # another writer, after the batch recorded its changes
        tx.merge_properties("p2", {"c": 3, "visits": 5}, T0)
        tx.insert_order(order_row("o2", "p2", total_minor=750, placed_at=later))
    with store.transaction() as tx:
        locked = changes.flush(tx, stamp=later, verify=True)
    assert locked.missing == [] and not changes
    with store.read() as tx:
        p2, o1, prod = tx.get_profile("p2"), tx.get_order("o1"), tx.get_product("prod")
    assert p2 is not None and o1 is not None and prod is not None
    assert p2["properties"] == {"a": 1, "visits": 6, "b": 2, "c": 3}  # the other writer's keys kept
    assert (p2["tags"], p2["locale"], p2["updated_at"]) == (["y"], "de-DE", later)
    assert (p2["orders_count"], p2["total_spent"], p2["last_order_at"]) == (2, {"EUR": "20.00"}, later)
    assert (o1["financial_status"], o1["tags"], prod["status"]) == ("paid", ["vip"], "hidden")


def test_rows_are_locked_in_one_order_whatever_order_the_changes_came_in(store: Store) -> None:
    _rows(store)
    changes = RowChanges()
    changes.add("product", "prod", Tags(add=("t",)))
    changes.add("cart", "c1", SetColumns({"checkout_url": "https://shop.example/c1"}))
    changes.add("order", "o1", Tags(add=("t",)))
    changes.add("profile", "p2", SetKeys({"k": 1}))
    changes.add("order", "o0", Tags(add=("t",)))
    changes.add("profile", "p1")  # only locked
    with store.transaction() as tx:
        rec = Recording(tx)
        changes.flush(rec)
    locks = [(kind, ids) for what, kind, ids in rec.calls if what == "lock"]
    assert locks == [("profile", ["p1", "p2"]), ("order", ["o0", "o1"]), ("cart", ["c1"]), ("product", ["prod"])]
    writes = [(kind, ids) for what, kind, ids in rec.calls if what == "write"]
    assert writes == [("order", ["o0", "o1"]), ("cart", ["c1"]), ("product", ["prod"]), ("profile", ["p2"])]
    assert all(what == "lock" for what, _, _ in rec.calls[:4])  # every lock before any write


def test_a_missing_row_is_reported_and_skipped_and_a_failed_run_can_be_undone(store: Store) -> None:
    _rows(store)
    changes = RowChanges()
    changes.add("profile", "p1", SetKeys({"kept": True}))
    mark = changes.count("profile", "p1")
    changes.add("profile", "p1", SetKeys({"undone": True}))
    changes.truncate("profile", "p1", mark)
    changes.add("order", "gone", SetColumns({"status": "cancelled"}))
    with store.transaction() as tx:
        assert changes.flush(tx, verify=True).missing == [("order", "gone")]
    with store.read() as tx:
        p1 = tx.get_profile("p1")
    assert p1 is not None and p1["properties"] == {"kept": True}

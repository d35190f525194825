"""A write-behind view of one transaction, for one batch of ingested events.

Ingest asks the store a dozen small questions per event (who owns this email, the profile, its open
cart, the product, its flow entries, is it already in this flow) and writes a handful of rows. One
at a time that is a dozen round trips through SQLAlchemy per event. ``WriteBehindTx`` answers the
same named operations from rows fetched for the whole batch at once (``prefetch``) and keeps the
batch's writes in memory, writing them with one executemany per table at ``flush``.

It offers every storage port (``storeflow.store.ports.WriteBehind``), so the ingest code runs on it
unchanged. Correctness rules:

* The cache always equals the database plus the pending writes. Every port operation is declared at
  the end of this module: ``ANSWERED`` (from memory, only where that is exact), ``PASS_THROUGH``
  (touches nothing cached) or ``FLUSHING`` (the pending writes go first, then the operation runs on
  the database and the cache is kept or forgotten as declared).
* A key that was not prefetched is read from the database on first use; that is safe because a key
  with pending writes is always in the cache.
* Rows another transaction may insert at the same time (an event's idempotency key, an identity, a
  run's active key, an order or cart id) are checked inside this transaction and inserted plainly:
  if a concurrent writer took one meanwhile, the unique constraint fails, ``LostRace`` is raised,
  the transaction rolls back, and ingest retries the batch (which then sees the other writer's rows).
* Existing rows are never written back whole from the cache. What the batch does to an existing
  profile, order or cart is recorded as replayable patches in a ``RowChanges``
  (``storeflow.store.row_changes``, the worker's batch writes through the same one): at flush the
  rows are locked in the canonical order (profiles, orders, carts, products; ids sorted), the
  columns the patches depend on are read under that lock, and the patches are replayed on them.
  So a property key the worker set since the cache read the row is kept, and a profile's order
  summary is recomputed from the orders table under the profile's lock (after this flush's orders
  are inserted), so two batches storing two new orders of one profile both count.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from storeflow.errors import StorageError
from storeflow.model.money import from_minor
from storeflow.store.ports import PORTS, PrefetchKeys, operations
from storeflow.store.row_changes import OrderSummary, RowChanges, SetColumns, SetKeys
from storeflow.store.sql.profiles_ops import follow_merges, new_profile_row
from storeflow.store.sql.tx import SqlTx

__all__ = ["ANSWERED", "FLUSHING", "PASS_THROUGH", "PrefetchKeys", "WriteBehindTx"]


class WriteBehindTx(SqlTx):
    def __init__(self, tx: SqlTx) -> None:
        super().__init__(tx.conn, tx.store)
        self._notify = tx._notify
        self._reset_cache()
        self._db = tx  # the transaction itself: the flush's reads and writes, past this view's cache
        self._new_profiles: dict[str, dict[str, Any]] = {}
        self._changes = RowChanges()  # what the batch did to existing profiles, orders and carts
        self._touched: dict[str, datetime] = {}
        self._new_identities: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._event_keys: set[tuple[str | None, str]] = set()
        self._new_carts: dict[str, dict[str, Any]] = {}
        self._new_orders: dict[str, dict[str, Any]] = {}
        self._runs: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []
        self.flushes = 0

    def _reset_cache(self) -> None:
        self._owners: dict[tuple[str, str], str | None] = {}
        self._profiles: dict[str, dict[str, Any] | None] = {}
        self._idents_of: dict[str, list[tuple[str, str]]] = {}
        self._carts: dict[str, dict[str, Any] | None] = {}
        self._carts_of: set[str] = set()  # profiles whose open carts are all in _carts
        self._carts_by_profile: dict[str, set[str]] = {}
        self._orders: dict[str, dict[str, Any] | None] = {}
        self._orders_by_profile: dict[str, set[str]] = {}
        self._orders_of: set[str] = set()  # profiles whose orders are all in _orders
        self._products: dict[str, tuple[dict[str, Any], list[dict[str, Any]], int] | None] = {}
        self._products_written = False
        self._entry_rows: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._entries_of: set[str] = set()  # profiles whose entries of _entry_flows are all cached
        self._entry_flows: frozenset[str] = frozenset()
        self._active: set[str] = set()
        self._active_of: set[str] = set()
        self._waiting: set[tuple[str, str]] = set()
        self._waits_of: set[str] = set()
        self.stale = False

    # -- the batch's rows, fetched at once -------------------------------------------------------
    def prefetch(self, keys: PrefetchKeys) -> None:
        """Load what the coming events will ask about: a few statements for the whole batch.
        What is not loaded here is read one row at a time if ever asked for."""
        if keys.entry_flows != self._entry_flows:
            self._entry_flows, self._entries_of = keys.entry_flows, set()
        idents = [i for i in set(keys.identities) if i not in self._owners]
        owners = self.identity_owners(idents)
        for ident in idents:
            self._owners[ident] = owners.get(ident)
        wanted = {o for i in keys.identities if (o := self._owners.get(i)) is not None} | set(keys.profile_ids)
        self._load_profiles(wanted)
        live = self._live(wanted)
        triggering = self._live(self._owners.get(i) for i in keys.trigger_identities)
        ordering = self._live(self._owners.get(i) for i in keys.order_identities)
        carts = [c for c in set(keys.cart_ids) if c not in self._carts]
        need_carts = [p for p in triggering | ordering if p not in self._carts_of]
        if carts or need_carts:
            for row in self.carts_for(carts, need_carts):
                self._cache_cart(row)
        for c in carts:
            self._carts.setdefault(c, None)
        self._carts_of |= set(need_carts)
        orders = [o for o in set(keys.order_ids) if o not in self._orders]
        need_orders = [p for p in ordering if p not in self._orders_of]
        if orders or need_orders:
            for row in self.orders_for(orders, need_orders):
                self._cache_order(row)
        for o in orders:
            self._orders.setdefault(o, None)
        self._orders_of |= set(need_orders)
        products = [p for p in set(keys.product_ids) if p not in self._products]
        if products:
            found = self.products_with_stock(products)
            for pid in products:
                self._products[pid] = found.get(pid)
        unknown = [p for p in live if p not in self._idents_of]
        if unknown:
            found_idents = self.identities_of_profiles(unknown)
            for pid in unknown:
                self._idents_of[pid] = found_idents.get(pid, [])
        new = [p for p in triggering if p not in self._entries_of]
        if new:
            self._entry_rows.update(self.entries_of_profiles(new, self._entry_flows))
            self._entries_of |= set(new)
            self._active |= self.active_keys_of_profiles(new)
            self._active_of |= set(new)
        waits = [p for p in live if p not in self._waits_of]
        if waits:
            self._waiting |= self.waiting_profiles(waits)
            self._waits_of |= set(waits)
        self.stale = False

    def _live(self, ids: Iterable[str | None]) -> set[str]:
        return {pid for pid in (self._follow(p) for p in ids if p is not None) if pid is not None}

    def _cached_profiles(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """The rows of ``ids`` from the cache, the missing ones loaded (one query) and kept."""
        missing = {p for p in ids if p not in self._profiles}
        if missing:
            rows = self._db.rows_by_id("profile", missing)
            for pid in missing:
                self._profiles[pid] = rows.get(pid)
        return {p: row for p in ids if (row := self._profiles[p]) is not None}

    def _load_profiles(self, ids: Iterable[str]) -> None:
        """Cache the rows of ``ids`` and of the profiles they were merged into (a query per hop)."""
        follow_merges(ids, self._cached_profiles)

    def _follow(self, profile_id: str) -> str | None:
        row = self._profiles.get(profile_id)
        if row is not None and row["merged_into"] is None:
            return profile_id  # the common case: cached and not merged (no hop to follow)
        row = follow_merges([profile_id], self._cached_profiles).get(profile_id)
        return None if row is None else str(row["id"])

    # -- profiles and identities -----------------------------------------------------------------
    def find_profiles_by_identities(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        missing = [i for i in idents if i not in self._owners]
        if missing:
            owners = self.identity_owners(missing)
            for ident in missing:
                self._owners[ident] = owners.get(ident)
        return {i: owner for i in idents if (owner := self._owners[i]) is not None}

    def resolve_profile_id(self, profile_id: str) -> str | None:
        return self._follow(profile_id)

    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        pid = self._follow(profile_id)
        return None if pid is None else self._profiles[pid]

    def create_profile(self, profile_id: str, now: datetime, **values: Any) -> None:
        row = new_profile_row(profile_id, now, **values)
        self._profiles[profile_id] = row
        self._new_profiles[profile_id] = row
        self._idents_of[profile_id] = []
        self._carts_of.add(profile_id)  # a new profile has no identities, carts, orders, entries, runs or waits
        self._orders_of.add(profile_id)
        self._entries_of.add(profile_id)
        self._active_of.add(profile_id)
        self._waits_of.add(profile_id)

    def add_identities(self, profile_id: str, idents: list[tuple[str, str]], now: datetime) -> None:
        self.find_profiles_by_identities(idents)  # loads any not yet known
        for kind, value in idents:
            if self._owners[(kind, value)] is None:  # ON CONFLICT DO NOTHING: an owned one stays
                self._owners[(kind, value)] = profile_id
                self.identities_of(profile_id).append((kind, value))
                self._new_identities.append(
                    {"kind": kind, "value": value, "profile_id": profile_id, "created_at": now})

    def identities_of(self, profile_id: str) -> list[tuple[str, str]]:
        if profile_id not in self._idents_of:
            self._idents_of[profile_id] = super().identities_of(profile_id)
        return self._idents_of[profile_id]

    def update_profile(self, profile_id: str, now: datetime, **values: Any) -> None:
        if profile_id not in self._profiles:
            self._load_profiles([profile_id])
        row = self._profiles[profile_id]
        if row is None:
            return
        values["updated_at"] = now
        row.update(values)
        if profile_id not in self._new_profiles:
            self._changes.add("profile", profile_id, SetColumns(dict(values)))

    def merge_properties(self, profile_id: str, patch: dict[str, Any], now: datetime) -> None:
        """The cached row gets the keys now; the database row at flush, merged into the row as it
        is then, read under its lock: a key the worker set meanwhile is kept."""
        if profile_id not in self._profiles:
            self._load_profiles([profile_id])
        row = self._profiles[profile_id]
        if row is None:
            return
        row["properties"] = {**(row["properties"] or {}), **patch}
        row["updated_at"] = now
        if profile_id not in self._new_profiles:
            self._changes.add("profile", profile_id, SetKeys(dict(patch)), SetColumns({"updated_at": now}))

    def touch_active(self, profile_id: str, at: datetime) -> None:
        if profile_id not in self._profiles:
            self._load_profiles([profile_id])
        row = self._profiles[profile_id]
        if row is None or (row["last_active_at"] is not None and row["last_active_at"] >= at):
            return
        row["last_active_at"] = at
        if profile_id not in self._new_profiles:
            self._touched[profile_id] = at

    # -- events ----------------------------------------------------------------------------------
    def insert_event(self, record: dict[str, Any]) -> bool:
        """Callers check idempotency keys first (``existing_idempotency_keys`` plus the batch's own);
        a key taken by a concurrent writer surfaces at flush as ``LostRace``."""
        self._events.append(dict(record))
        self._event_keys.add((record.get("profile_id"), record["type"]))
        return True

    def history_events(self, profile_id: str, event_type: str, since: datetime | None,
                       until: datetime) -> list[dict[str, Any]]:
        if (profile_id, event_type) in self._event_keys:
            self.flush()
        return super().history_events(profile_id, event_type, since, until)

    # -- carts -----------------------------------------------------------------------------------
    def _cache_cart(self, row: dict[str, Any]) -> None:
        self._carts[row["id"]] = row
        if row["profile_id"] is not None:
            self._carts_by_profile.setdefault(row["profile_id"], set()).add(row["id"])

    def get_cart(self, cart_id: str) -> dict[str, Any] | None:
        if cart_id not in self._carts:
            row = super().get_cart(cart_id)
            if row is None:
                self._carts[cart_id] = None
            else:
                self._cache_cart(row)
        return self._carts[cart_id]

    def insert_cart(self, row: dict[str, Any]) -> None:
        row = dict(row)
        self._cache_cart(row)
        self._new_carts[row["id"]] = row

    def update_cart(self, cart_id: str, **values: Any) -> None:
        row = self.get_cart(cart_id)
        if row is None:
            return
        row.update(values)
        self._cache_cart(row)
        if cart_id not in self._new_carts:
            self._changes.add("cart", cart_id, SetColumns(dict(values)))

    def latest_open_cart(self, profile_id: str) -> dict[str, Any] | None:
        if profile_id not in self._carts_of:
            for row in self.carts_for([], [profile_id]):
                if row["id"] not in self._carts:
                    self._cache_cart(row)
            self._carts_of.add(profile_id)
        best: dict[str, Any] | None = None
        for cid in self._carts_by_profile.get(profile_id, ()):
            cart = self._carts.get(cid)
            if cart is not None and cart["profile_id"] == profile_id and cart["converted_at"] is None \
                    and (best is None or cart["last_activity_at"] > best["last_activity_at"]):
                best = cart
        return best

    def _open_carts(self, profile_id: str) -> list[dict[str, Any]]:
        self.latest_open_cart(profile_id)  # makes the profile's open carts complete in the cache
        return [c for cid in self._carts_by_profile.get(profile_id, ())
                if (c := self._carts.get(cid)) is not None and c["profile_id"] == profile_id
                and c["converted_at"] is None]

    def convert_carts(self, profile_id: str | None, cart_ids: list[str], order_id: str, at: datetime) -> int:
        """As the SQL operation: named carts (and, with a profile, its open ones), or else the
        profile's open carts last active by ``at``, become converted to this order."""
        targets: dict[str, dict[str, Any]] = {}
        if cart_ids:
            for cid in cart_ids:
                cart = self.get_cart(cid)
                if cart is not None and cart["converted_at"] is None:
                    targets[cid] = cart
            if profile_id:
                targets.update({c["id"]: c for c in self._open_carts(profile_id)})
        elif profile_id:
            targets = {c["id"]: c for c in self._open_carts(profile_id) if c["last_activity_at"] <= at}
        for cid in targets:
            self.update_cart(cid, converted_at=at, order_id=order_id)
        return len(targets)

    # -- orders ----------------------------------------------------------------------------------
    def _cache_order(self, row: dict[str, Any]) -> None:
        self._orders[row["id"]] = row
        if row["profile_id"] is not None:
            self._orders_by_profile.setdefault(row["profile_id"], set()).add(row["id"])

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        if order_id not in self._orders:
            row = super().get_order(order_id)
            if row is None:
                self._orders[order_id] = None
            else:
                self._cache_order(row)
        return self._orders[order_id]

    def insert_order(self, row: dict[str, Any]) -> None:
        row = dict(row)
        self._cache_order(row)
        self._new_orders[row["id"]] = row

    def update_order(self, order_id: str, **values: Any) -> None:
        row = self.get_order(order_id)
        if row is None:
            return
        row.update(values)
        self._cache_order(row)
        if order_id not in self._new_orders:
            self._changes.add("order", order_id, SetColumns(dict(values)))

    def order_aggregates(self, profile_id: str) -> dict[str, Any]:
        """As the SQL operation, from the cached orders when the profile's are all there."""
        if profile_id not in self._orders_of:
            self.flush()
            return super().order_aggregates(profile_id)
        live = [o for oid in self._orders_by_profile.get(profile_id, ())
                if (o := self._orders.get(oid)) is not None and o["profile_id"] == profile_id
                and o["status"] != "cancelled"]
        minor: dict[str, int] = {}
        for o in live:
            minor[o["currency"]] = minor.get(o["currency"], 0) + int(o["total_minor"]) - int(o["refunded_minor"])
        placed = [o["placed_at"] for o in live]
        return {"orders_count": len(live), "total_spent": {c: str(from_minor(v, c)) for c, v in minor.items()},
                "first_order_at": min(placed, default=None), "last_order_at": max(placed, default=None)}

    def recompute_order_aggregates(self, profile_id: str, now: datetime) -> None:
        """The cached row gets the summary of the orders this view knows; the database row is
        summarised again at flush from the orders table, under the profile's lock, so an order
        another batch stored meanwhile counts too."""
        self.update_profile(profile_id, now, **self.order_aggregates(profile_id))
        if profile_id not in self._new_profiles and self._profiles.get(profile_id) is not None:
            self._changes.discard("profile", profile_id, OrderSummary)
            self._changes.add("profile", profile_id, OrderSummary())

    # -- products (read only here; product and stock events go through the database) -------------
    def _product(self, product_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], int] | None:
        if product_id not in self._products:
            self._products[product_id] = self.products_with_stock([product_id]).get(product_id)
        return self._products[product_id]

    # Once this batch has written a product, a variant or stock, product reads go to the database one
    # query each, as they did before the cache: a catalog sync writes what it reads next.
    def get_product(self, product_id: str) -> dict[str, Any] | None:
        if self._products_written and product_id not in self._products:
            return super().get_product(product_id)
        found = self._product(product_id)
        return None if found is None else found[0]

    def product_variants(self, product_id: str) -> list[dict[str, Any]]:
        if self._products_written and product_id not in self._products:
            return super().product_variants(product_id)
        found = self._product(product_id)
        return [] if found is None else found[1]

    def product_stock(self, product_id: str) -> int:
        if self._products_written and product_id not in self._products:
            return super().product_stock(product_id)
        found = self._product(product_id)
        return 0 if found is None else found[2]

    # -- runs, entries, waits --------------------------------------------------------------------
    def _entries_known(self, flow_id: str, profile_id: str) -> bool:
        return profile_id in self._entries_of and flow_id in self._entry_flows

    def flow_entry(self, flow_id: str, profile_id: str) -> dict[str, Any] | None:
        key = (flow_id, profile_id)
        if key not in self._entry_rows and not self._entries_known(flow_id, profile_id):
            self._entry_rows[key] = super().flow_entry(flow_id, profile_id)
        return self._entry_rows.get(key)

    def record_entry(self, flow_id: str, profile_id: str, at: datetime) -> None:
        key = (flow_id, profile_id)
        if key in self._entry_rows or self._entries_known(flow_id, profile_id):
            current = self._entry_rows.get(key)
            entries = 1 if current is None else int(current["entries"]) + 1
            self._entry_rows[key] = {"flow_id": flow_id, "profile_id": profile_id, "entries": entries,
                                     "last_entered_at": at}
        # else: not cached, nobody reads it in this batch; the upsert below counts it in the database
        self._entries.append({"flow_id": flow_id, "profile_id": profile_id, "at": at})

    def create_run(self, row: dict[str, Any]) -> bool:
        key, profile_id = row.get("active_key"), row.get("profile_id")
        if row.get("dedupe_key") is not None or key is None or profile_id is None:
            self.flush()
            return super().create_run(row)
        if profile_id not in self._active_of:
            self._active |= self.active_keys_of_profiles([profile_id])
            self._active_of.add(profile_id)
        if key in self._active:
            return False
        self._active.add(key)
        self._runs.append(dict(row))
        return True

    def waits_for(self, profile_id: str, event_type: str) -> list[dict[str, Any]]:
        if profile_id in self._waits_of and (profile_id, event_type) not in self._waiting:
            return []
        self.flush()
        return super().waits_for(profile_id, event_type)

    # -- writing ---------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the pending rows, one executemany per table. The cache stays valid.

        The existing rows the batch changed (and the profiles it touched) are locked first, in the
        canonical order of ``RowChanges`` (the worker's too), then the new rows are inserted, then
        the changes are replayed on the rows as read under the lock and written."""
        if not (self._new_profiles or self._changes or self._touched or self._new_identities or self._events
                or self._new_carts or self._new_orders or self._runs or self._entries):
            return
        self.flushes += 1
        db = self._db
        for pid in self._touched:
            self._changes.add("profile", pid)  # locked with the others; moved forward in SQL below
        locked = self._changes.lock(db)
        db.insert_profiles([dict(r) for r in self._new_profiles.values()])
        db.touch_active_many([{"id": pid, "at": at} for pid, at in self._touched.items()])
        db.insert_identities(self._new_identities)
        db.insert_events(self._events)
        db.insert_carts([dict(r) for r in self._new_carts.values()])
        db.insert_orders([dict(r) for r in self._new_orders.values()])
        self._changes.write(db, locked)  # after the orders: profiles' order summaries count them
        db.create_runs(self._runs)
        db.record_entries(self._entries)
        self._new_profiles, self._touched = {}, {}
        self._new_identities, self._events, self._event_keys = [], [], set()
        self._new_carts, self._runs, self._entries = {}, [], []
        self._new_orders = {}

    def invalidate(self) -> None:
        """Forget every cached row (after the database changed under it); ``stale`` tells the
        caller to prefetch again for the events still to come."""
        self._reset_cache()
        self.stale = True

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Refused: writes buffered inside a savepoint would be flushed outside it, so its rollback
        would not undo them. Take savepoints on the transaction, not on its batch view."""
        raise StorageError("a write-behind batch view cannot take a savepoint (its buffered writes would escape "
                           "it); take the savepoint on the transaction itself")
        yield  # pragma: no cover - a generator, for @contextmanager


# -- what the view answers, and what it runs on the database -----------------------------------
# Every operation of every port (storeflow.store.ports) is in exactly one of ANSWERED, PASS_THROUGH
# and FLUSHING; ``_declare`` checks that when this module loads and tests/contract/test_ports.py
# checks it again, so a new port operation cannot silently bypass the cache.

#: Operations WriteBehindTx defines itself: answered from the batch cache (or its buffered writes).
ANSWERED = frozenset({
    "find_profiles_by_identities", "resolve_profile_id", "get_profile", "identities_of", "create_profile",
    "add_identities", "update_profile", "merge_properties", "touch_active", "order_aggregates",
    "recompute_order_aggregates", "insert_event", "history_events", "get_cart", "insert_cart", "update_cart",
    "latest_open_cart", "convert_carts", "get_order", "insert_order", "update_order", "get_product",
    "product_variants", "product_stock", "flow_entry", "record_entry", "create_run", "waits_for", "savepoint",
})

#: Operations that never read or write a table this view caches or buffers: run as they are.
PASS_THROUGH = frozenset({
    "notify_after_commit", "ping", "flows_revision", "live_flows", "get_flow_version", "write_behind",
    "existing_idempotency_keys", "identity_owners", "identities_of_profiles", "carts_for",
    "products_with_stock", "entries_of_profiles", "active_keys_of_profiles", "waiting_profiles",
    "insert_profiles", "insert_identities", "insert_events", "insert_carts", "update_rows",
    "touch_active_many", "create_runs", "record_entries", "get_event", "orders_for", "insert_orders",
    # segment flows' backfills, the statistics' meta row, membership (segment tables only; ingest
    # queues changed profiles through it) and segments as documents
    "set_segment_backfill", "segment_backfills", "postpone_segment_backfill", "set_meta_value", "segments_of",
    "memberships_of", "is_member", "enter_segment", "exit_segment", "members_in_range", "member_counts",
    "membership_history", "queue_segment_changes", "claim_segment_changes", "has_segment_changes",
    "set_segment_due", "delete_segment_due", "segment_due_of", "claim_due_segment_flips", "next_segment_due_at",
    "segment_states", "lock_segment_for_compute", "mark_segment_computed", "finish_segment_changes",
    "lock_profiles_for_membership", "finish_segment_due", "get_segment", "list_segments", "insert_segment",
    "update_segment", "insert_segment_version", "get_segment_version", "segment_versions_of",
    "live_segment_definitions", "delete_segment", "bump_segments_revision", "segments_revision", "segment_users",
})

Effect = Literal["keep", "products", "all"]

#: Operations that need the pending rows written first, and what of the cache they make wrong
#: afterwards: ``keep`` nothing; ``products`` the cached products; ``all`` everything (forgotten).
FLUSHING: dict[str, Effect] = {
    **dict.fromkeys(("get_variant", "variant_by_sku", "lock_run", "get_run", "update_run", "remove_wait",
                     "order_aggregates_of",
                     # segment statistics: customers ranked from the profiles
                     "count_customers", "customer_values_at",
                     # one profile's collections for the Python evaluator (orders and carts are buffered)
                     "orders_of_profile", "carts_of_profile", "messages_of_profile",
                     # segment member pages and preview (they read profiles: email, phone)
                     "segment_members_page", "segment_members_at", "preview_segment",
                     # segment membership reads of profiles and their records
                     "merged_members", "profile_id_page", "segment_member_ids"), "keep"),
    **dict.fromkeys(("upsert_product", "upsert_variant", "set_stock"), "products"),
    **dict.fromkeys((
        # profiles, events, orders
        "merge_profiles", "list_profiles", "count_profiles", "profiles_page", "history_events_of", "timeline",
        "count_events", "profile_orders",
        # flows and schedules
        "get_flow", "list_flows", "flow_versions_of", "insert_flow", "update_flow", "bump_flow_revision",
        "insert_flow_version", "set_flow_layout", "set_schedule", "drop_schedule", "claim_due_schedules",
        "fire_schedule", "next_schedule_at",
        # runs (the worker's reads and writes by id)
        "claim_due_runs", "append_steps", "run_steps_of", "list_runs", "run_counts", "run_counts_by_flow",
        "step_stats", "next_due_at", "add_wait", "rows_by_id", "profiles_by_id", "open_carts_of", "update_runs",
        "replace_waits",
        # outbox, messages, keys
        "enqueue", "enqueue_many", "claim_outbox", "renew_lease", "renew_leases",
        "record_attempts", "finish_messages", "finish_held_message",
        "messages_with_pending_events", "clear_pending_events", "get_message", "messages_of_run", "attempts_of",
        "attempts_of_messages", "next_outbox_at", "outbox_counts", "message_by_provider_id", "list_messages",
        "update_message", "suppress", "suppression", "suppressions_of", "meta_value", "insert_key", "key_by_hash",
        "list_keys", "revoke_key",
        # date triggers
        "set_date_schedule", "advance_backfill", "live_date_flows", "claim_profile_changes", "has_profile_changes",
        "set_date_fires", "delete_date_fires", "date_fires_of", "last_occurrences", "claim_due_date_fires",
        "update_date_fires", "next_date_fire_at",
        # campaigns (the audience reads profiles; Smart Sending, cancel and the report the outbox)
        "insert_campaign", "get_campaign", "list_campaigns", "update_campaign", "claim_due_campaigns",
        "lock_campaign", "audience_segments_known", "count_audience", "audience_sample", "audience_timezones",
        "freeze_audience", "claim_campaign_recipients", "update_campaign_recipients", "campaign_queued_since",
        "has_pending_recipients", "recently_messaged", "next_campaign_send_at", "next_recipient_due",
        "cancel_campaign", "campaign_report",
    ), "all"),
}


def _flushing(fn: Callable[..., Any], effect: Effect) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run_on_database(self: WriteBehindTx, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        result = fn(self, *args, **kwargs)
        if effect == "products":
            self._products.clear()
            self._products_written = True
        elif effect == "all":
            self.flush()  # what the operation buffered through this view (a merge's profile updates)
            self.invalidate()
        return result

    return run_on_database


def _declare(cls: type[WriteBehindTx]) -> None:
    """Check the declaration against the ports and the class, then wrap the FLUSHING operations."""
    port_ops = {name for port in PORTS for name in operations(port)}
    answered = {name for name in cls.__dict__ if name in port_ops}
    problems = []
    if answered != ANSWERED:
        problems.append(f"ANSWERED differs from the port operations WriteBehindTx defines: "
                        f"{sorted(answered ^ ANSWERED)}")
    for name in sorted(port_ops):
        kinds = [k for k, group in (("ANSWERED", ANSWERED), ("PASS_THROUGH", PASS_THROUGH), ("FLUSHING", FLUSHING))
                 if name in group]
        if len(kinds) != 1:
            problems.append(f"{name}: declared in {kinds or 'none'} of ANSWERED, PASS_THROUGH, FLUSHING")
    if undeclared := sorted((PASS_THROUGH | set(FLUSHING)) - port_ops):
        problems.append(f"declared but on no port: {undeclared}")
    if problems:
        raise TypeError("WriteBehindTx's declaration does not match the storage ports: " + "; ".join(problems))
    for name, effect in FLUSHING.items():
        setattr(cls, name, _flushing(getattr(SqlTx, name), effect))


_declare(WriteBehindTx)

"""Set-based reads and writes for a batch of events: what ingest needs for a thousand events in a
handful of statements instead of a dozen per event.

Reads take every key of the batch at once (``IN`` lists, chunked below the drivers' parameter
limits); writes are one executemany per table. Inserts that may meet a concurrent writer's row
(``events`` by idempotency key, ``runs`` by active key, ``orders`` and ``carts`` by id) report a
lost race as ``LostRace``, so the caller retries the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from storeflow.errors import LostRace
from storeflow.store.sql.common import TxBase
from storeflow.store.sql.dates_ops import note_profile_changes
from storeflow.store.tables import (
    carts,
    events,
    flow_entries,
    identities,
    orders,
    products,
    profiles,
    run_waits,
    runs,
    stock_levels,
    variants,
)

CHUNK = 500  # keys per IN list: well under SQLite's 32,766 bound parameters, even for pairs
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@contextmanager
def _lost_race(what: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise LostRace(f"{what} was stored by another writer meanwhile; the batch is retried") from exc


class BulkOps(TxBase):
    # -- reads -----------------------------------------------------------------------------------
    def identity_owners(self, idents: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Profile id owning each (kind, value) that has one. One ``kind = ? AND value IN (...)`` per
        kind: SQLite scans the whole table for a row-value IN, but seeks the primary key for this."""
        by_kind: dict[str, set[str]] = {}
        for kind, value in idents:
            by_kind.setdefault(kind, set()).add(value)
        out: dict[tuple[str, str], str] = {}
        for kind, values in sorted(by_kind.items()):
            for chunk in _chunks(sorted(values)):
                rows = self.conn.execute(
                    select(identities.c.value, identities.c.profile_id)
                    .where(identities.c.kind == kind, identities.c.value.in_(chunk))
                ).all()
                out.update({(kind, r.value): r.profile_id for r in rows})
        return out

    def identities_of_profiles(self, ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for chunk in _chunks(sorted(set(ids))):
            rows = self.conn.execute(
                select(identities.c.profile_id, identities.c.kind, identities.c.value)
                .where(identities.c.profile_id.in_(chunk))
            ).all()
            for r in rows:
                out.setdefault(r.profile_id, []).append((r.kind, r.value))
        return out

    def carts_for(self, cart_ids: Iterable[str], profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Carts with these ids, and every open cart of these profiles."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(cart_ids))):
            for row in self.conn.execute(select(carts).where(carts.c.id.in_(chunk))):
                found[row.id] = row._asdict()
        for chunk in _chunks(sorted(set(profile_ids))):
            q = select(carts).where(carts.c.profile_id.in_(chunk), carts.c.converted_at.is_(None))
            for row in self.conn.execute(q):
                found[row.id] = row._asdict()
        return list(found.values())

    def orders_for(self, order_ids: Iterable[str], profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Orders with these ids, and every order of these profiles."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(order_ids))):
            for row in self.conn.execute(select(orders).where(orders.c.id.in_(chunk))):
                found[row.id] = row._asdict()
        for chunk in _chunks(sorted(set(profile_ids))):
            for row in self.conn.execute(select(orders).where(orders.c.profile_id.in_(chunk))):
                found[row.id] = row._asdict()
        return list(found.values())

    def insert_orders(self, rows: list[dict[str, Any]]) -> None:
        """Insert orders whose ids were looked up in this transaction; an order another writer
        stored meanwhile (``order_placed`` and ``order_paid`` at two processes) raises LostRace."""
        if rows:
            with _lost_race("an order"):
                self.bulk_insert(orders, rows)

    def products_with_stock(self, ids: Iterable[str]) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]], int]]:
        """(product row, its variants ordered by id, total stock) for each product that exists."""
        keys = sorted(set(ids))
        rows: dict[str, dict[str, Any]] = {}
        by_product: dict[str, list[dict[str, Any]]] = {}
        stock: dict[str, int] = {}
        for chunk in _chunks(keys):
            for row in self.conn.execute(select(products).where(products.c.id.in_(chunk))):
                rows[row.id] = row._asdict()
            q = select(variants).where(variants.c.product_id.in_(chunk)).order_by(variants.c.id)
            for row in self.conn.execute(q):
                by_product.setdefault(row.product_id, []).append(row._asdict())
            totals = self.conn.execute(
                select(variants.c.product_id, func.coalesce(func.sum(stock_levels.c.quantity), 0))
                .select_from(stock_levels.join(variants, variants.c.id == stock_levels.c.variant_id))
                .where(variants.c.product_id.in_(chunk)).group_by(variants.c.product_id)
            ).all()
            stock.update({str(pid): int(total) for pid, total in totals})
        return {pid: (row, by_product.get(pid, []), stock.get(pid, 0)) for pid, row in rows.items()}

    def entries_of_profiles(self, ids: Iterable[str], flow_ids: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
        """Entries of these flows by these profiles, keyed by (flow_id, profile_id)."""
        flows_wanted = sorted(set(flow_ids))
        out: dict[tuple[str, str], dict[str, Any]] = {}
        if not flows_wanted:
            return out
        for chunk in _chunks(sorted(set(ids))):
            q = select(flow_entries).where(flow_entries.c.profile_id.in_(chunk),
                                           flow_entries.c.flow_id.in_(flows_wanted))
            for row in self.conn.execute(q):
                entry = row._asdict()
                out[(entry["flow_id"], entry["profile_id"])] = entry
        return out

    def active_keys_of_profiles(self, ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(sorted(set(ids))):
            rows = self.conn.execute(
                select(runs.c.active_key).where(runs.c.profile_id.in_(chunk), runs.c.active_key.is_not(None))
            ).all()
            out.update(str(r[0]) for r in rows)
        return out

    def waiting_profiles(self, ids: Iterable[str]) -> set[tuple[str, str]]:
        """(profile_id, event_type) pairs some run waits for."""
        out: set[tuple[str, str]] = set()
        for chunk in _chunks(sorted(set(ids))):
            rows = self.conn.execute(
                select(run_waits.c.profile_id, run_waits.c.event_type).where(run_waits.c.profile_id.in_(chunk))
            ).all()
            out.update((r.profile_id, r.event_type) for r in rows)
        return out

    # -- writes ----------------------------------------------------------------------------------
    def insert_profiles(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.bulk_insert(profiles, rows)
            note_profile_changes(self, [r["id"] for r in rows if r.get("properties") or r.get("timezone")])

    def insert_identities(self, rows: list[dict[str, Any]]) -> None:
        """Rows of kind, value, profile_id, created_at. An identity owned meanwhile raises LostRace."""
        if rows:
            with _lost_race("an identity"):
                self.bulk_insert(identities, rows)

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        """Insert events whose idempotency keys were checked in this transaction; a key stored
        meanwhile by a concurrent writer raises LostRace."""
        if rows:
            with _lost_race("an event's idempotency key"):
                self.bulk_insert(events, rows)

    def insert_carts(self, rows: list[dict[str, Any]]) -> None:
        """Insert carts whose ids were looked up in this transaction; one stored meanwhile by
        another writer raises LostRace."""
        if rows:
            with _lost_race("a cart"):
                self.bulk_insert(carts, rows)

    def touch_active_many(self, rows: list[dict[str, Any]]) -> None:
        """Rows of id and at: ``last_active_at`` moves forward only."""
        if not rows:
            return
        stmt = (update(profiles).where(profiles.c.id == bindparam("_id"))
                .where(profiles.c.last_active_at.is_(None) | (profiles.c.last_active_at < bindparam("_at")))
                .values(last_active_at=bindparam("_at")))
        self.conn.execute(stmt, [{"_id": r["id"], "_at": r["at"]} for r in rows])

    def create_runs(self, rows: list[dict[str, Any]]) -> None:
        """Insert runs whose active keys were checked in this transaction; a key taken meanwhile by a
        concurrent writer raises LostRace."""
        if rows:
            with _lost_race("a run's active key"):
                self.bulk_insert(runs, rows)
            self.notify_after_commit("storeflow_runs")

    def record_entries(self, rows: list[dict[str, Any]]) -> None:
        """Rows of flow_id, profile_id, at: one more entry each, last entered at ``at``."""
        if not rows:
            return
        stmt = self.upsert(flow_entries).values(
            flow_id=bindparam("flow_id"), profile_id=bindparam("profile_id"), entries=1,
            last_entered_at=bindparam("at"))
        stmt = stmt.on_conflict_do_update(
            index_elements=["flow_id", "profile_id"],
            set_={"entries": flow_entries.c.entries + 1, "last_entered_at": stmt.excluded.last_entered_at})
        self.conn.execute(stmt, rows)


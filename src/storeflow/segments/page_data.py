"""The Python evaluator's profile data for a page of profiles at once: the membership engine
computes the next flip of a time-relative segment for hundreds of profiles per transaction, and
reading each one's orders and events with its own statement costs a round trip per profile (most
of the time of a batch of exits on PostgreSQL). ``PageProfileData`` reads them with one statement
per 500 profiles, when the first profile of the page asks."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from storeflow.engine.records import StoreProfileData, order_product_ids, order_record
from storeflow.store.ports import StoreTx


class PageHistory:
    """A HistoryPort over the events of a page of profiles: per event type, every event of every
    profile of the page up to ``until``, read once."""

    def __init__(self, tx: StoreTx, profile_ids: list[str], until: datetime) -> None:
        self.tx, self.ids, self.until = tx, profile_ids, until
        self._id_set = frozenset(profile_ids)
        self._by_type: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def events(self, profile_id: str, event_type: str, since: datetime | None,
               until: datetime) -> list[dict[str, Any]]:
        """The profile's events of this type in [since, until], oldest first."""
        found = self._by_type.get(event_type)
        if found is None or until > self.until:
            if until > self.until or profile_id not in self._id_set:
                return self.tx.history_events(profile_id, event_type, since, until)
            found = self._by_type[event_type] = self.tx.history_events_of(self.ids, event_type, None, self.until)
        return [e for e in found.get(profile_id, ()) if (since is None or e["occurred_at"] >= since)
                and e["occurred_at"] <= until]


class PageProfileData(StoreProfileData):
    """StoreProfileData for a page of profiles: events through :class:`PageHistory`, and the orders
    of the whole page read when the first one is asked for."""

    def __init__(self, tx: StoreTx, profile_ids: list[str], until: datetime) -> None:
        super().__init__(tx, PageHistory(tx, profile_ids, until))
        self._page = profile_ids
        self._page_set = frozenset(profile_ids)
        self._page_orders_read = False

    def orders(self, profile_id: str) -> list[dict[str, Any]]:
        """Every order of the profile as order records, oldest first (the page's read at once)."""
        if not self._page_orders_read and profile_id in self._page_set:
            self._page_orders_read = True
            rows = self.tx.orders_for((), self._page)
            by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                by_profile[str(row["profile_id"])].append(row)
            ids = sorted({pid for row in rows for pid in order_product_ids(row)})
            products = self.tx.rows_by_id("product", ids, columns=("product_type", "tags")) if ids else {}
            for pid in self._page:
                ordered = sorted(by_profile.get(pid, ()), key=lambda r: (r["placed_at"], r["id"]))
                self._orders[pid] = [order_record(row, products) for row in ordered]
        return super().orders(profile_id)

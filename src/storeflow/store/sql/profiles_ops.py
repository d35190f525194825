"""Profiles and identities: lookup, creation, updates, merges, order aggregates."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from storeflow.model.money import from_minor
from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.sql.dates_ops import changes_dates, note_profile_changes
from storeflow.store.tables import (
    carts,
    events,
    flow_entries,
    identities,
    orders,
    profiles,
    run_waits,
    runs,
)

MAX_MERGE_HOPS = 16

Rows = Mapping[str, dict[str, Any]]


def follow_merges(ids: Iterable[str], load: Callable[[set[str]], Rows]) -> dict[str, dict[str, Any]]:
    """Each asked id -> the row of the profile it was merged into, following ``merged_into`` from row
    to row (the row itself when not merged; the same dict for ids that end at one profile). ``load``
    gives the rows (each with ``merged_into``) of the ids it finds, so a hop costs one call for all
    the ids at it. Ids with no row are absent; a chain longer than MAX_MERGE_HOPS ends where it is."""
    pending = {pid: pid for pid in ids}
    found: dict[str, dict[str, Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for hop in range(MAX_MERGE_HOPS + 1):
        wanted = {cur for cur in pending.values() if cur not in found}
        if wanted:
            found.update(load(wanted))
        following: dict[str, str] = {}
        for asked, current in pending.items():
            row = found.get(current)
            if row is None:
                continue
            if row["merged_into"] is None or hop == MAX_MERGE_HOPS:
                out[asked] = row
            else:
                following[asked] = row["merged_into"]
        pending = following
        if not pending:
            break
    return out


class ProfilesOps(TxBase):
    def find_profiles_by_identities(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not idents:
            return {}
        conds = [and_(identities.c.kind == k, identities.c.value == v) for k, v in idents]
        rows = self.conn.execute(
            select(identities.c.kind, identities.c.value, identities.c.profile_id).where(or_(*conds))
        ).all()
        return {(r.kind, r.value): r.profile_id for r in rows}

    def resolve_profile_id(self, profile_id: str) -> str | None:
        """Follow merges to the surviving profile."""
        row = follow_merges([profile_id], self._merge_links).get(profile_id)
        return None if row is None else str(row["id"])

    def _merge_links(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(select(profiles.c.id, profiles.c.merged_into).where(profiles.c.id.in_(sorted(ids))))
        return {r.id: {"id": r.id, "merged_into": r.merged_into} for r in rows}

    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        pid = self.resolve_profile_id(profile_id)
        if pid is None:
            return None
        row = self.conn.execute(select(profiles).where(profiles.c.id == pid)).mappings().first()
        return as_dict(row)

    def create_profile(self, profile_id: str, now: datetime, **values: Any) -> None:
        self.conn.execute(profiles.insert().values(**new_profile_row(profile_id, now, **values)))
        if values.get("properties") or values.get("timezone"):
            note_profile_changes(self, [profile_id])

    def add_identities(self, profile_id: str, idents: list[tuple[str, str]], now: datetime) -> None:
        for kind, value in idents:
            stmt = self.upsert(identities).values(kind=kind, value=value, profile_id=profile_id, created_at=now)
            self.conn.execute(stmt.on_conflict_do_nothing())

    def update_profile(self, profile_id: str, now: datetime, **values: Any) -> None:
        values["updated_at"] = now
        self.conn.execute(update(profiles).where(profiles.c.id == profile_id).values(**values))
        if changes_dates(values):
            note_profile_changes(self, [profile_id])

    def merge_properties(self, profile_id: str, patch: dict[str, Any], now: datetime) -> None:
        """Set these keys of the profile's ``properties``, keeping the others as stored now: the row
        is read under its lock (FOR UPDATE on PostgreSQL), so a key another transaction committed
        meanwhile is kept, never overwritten with an older copy."""
        q = select(profiles.c.properties).where(profiles.c.id == profile_id)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            return
        self.conn.execute(update(profiles).where(profiles.c.id == profile_id)
                          .values(properties={**(row.properties or {}), **patch}, updated_at=now))
        note_profile_changes(self, [profile_id])

    def touch_active(self, profile_id: str, at: datetime) -> None:
        self.conn.execute(
            update(profiles)
            .where(profiles.c.id == profile_id)
            .where((profiles.c.last_active_at.is_(None)) | (profiles.c.last_active_at < at))
            .values(last_active_at=at)
        )

    def merge_profiles(self, survivor: str, loser: str, now: datetime) -> None:
        """Move everything of ``loser`` to ``survivor``; the loser row stays as a redirect. Both
        rows are locked first (profiles in id order, as every batch locks them) and only then read,
        so a change another transaction commits to either meanwhile is merged, not overwritten."""
        locked = self._lock_pair(survivor, loser)
        if locked is None:
            return
        s, lo = locked
        for table in (identities, events, orders, carts, run_waits):
            self.conn.execute(update(table).where(table.c.profile_id == loser).values(profile_id=survivor))
        self._merge_runs(survivor, loser)
        self._merge_entries(survivor, loser)
        props = {**(lo["properties"] or {}), **(s["properties"] or {})}
        tags = sorted(set(s["tags"] or []) | set(lo["tags"] or []))
        values: dict[str, Any] = {"properties": props, "tags": tags}
        for col in ("email", "phone", "locale", "timezone"):
            if not s[col] and lo[col]:
                values[col] = lo[col]
        for ch in ("email", "sms", "push"):
            col = f"consent_{ch}"
            if s[col] == "never_asked" and lo[col] != "never_asked":
                values[col] = lo[col]
        if lo["last_active_at"] and (s["last_active_at"] is None or lo["last_active_at"] > s["last_active_at"]):
            values["last_active_at"] = lo["last_active_at"]
        self.update_profile(survivor, now, **values)
        self.update_profile(loser, now, merged_into=survivor, email=None, phone=None)
        self.recompute_order_aggregates(survivor, now)

    def _lock_pair(self, survivor: str, loser: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The two live profiles ``survivor`` and ``loser`` resolve to, locked (FOR UPDATE on
        PostgreSQL) in id order and read under the lock; None if either is unknown or both are one.
        A row merged into another by a concurrent transaction is followed to its survivor."""
        s_id, l_id = survivor, loser
        for _ in range(64):  # each round follows at least one merge
            if s_id == l_id:
                return None
            q = select(profiles).where(profiles.c.id.in_(sorted({s_id, l_id}))).order_by(profiles.c.id)
            if self.conn.dialect.name == "postgresql":
                q = q.with_for_update()
            rows = {r["id"]: dict(r) for r in self.conn.execute(q).mappings()}
            s, lo = rows.get(s_id), rows.get(l_id)
            if s is None or lo is None:
                return None
            if s["merged_into"] is None and lo["merged_into"] is None:
                return s, lo
            s_id, l_id = s["merged_into"] or s_id, lo["merged_into"] or l_id
        return None

    def _merge_runs(self, survivor: str, loser: str) -> None:
        moved = self.conn.execute(
            select(runs.c.id, runs.c.flow_id, runs.c.active_key).where(runs.c.profile_id == loser)
        ).all()
        for run in moved:
            values: dict[str, Any] = {"profile_id": survivor}
            if run.active_key is not None:
                key = f"{run.flow_id}:{survivor}"
                taken = self.conn.execute(select(runs.c.id).where(runs.c.active_key == key)).first()
                if taken is None:
                    values["active_key"] = key
                else:
                    # The survivor is already in this flow: the anonymous duplicate ends here.
                    values.update(active_key=None, status="exited", due_at=None,
                                  exit_reason="profile merged into one already in this flow")
                    self.conn.execute(run_waits.delete().where(run_waits.c.run_id == run.id))
            self.conn.execute(update(runs).where(runs.c.id == run.id).values(**values))

    def _merge_entries(self, survivor: str, loser: str) -> None:
        rows = self.conn.execute(select(flow_entries).where(flow_entries.c.profile_id == loser)).mappings().all()
        for row in rows:
            existing = self.conn.execute(
                select(flow_entries).where(
                    flow_entries.c.flow_id == row["flow_id"], flow_entries.c.profile_id == survivor
                )
            ).mappings().first()
            if existing is None:
                self.conn.execute(
                    update(flow_entries)
                    .where(flow_entries.c.flow_id == row["flow_id"], flow_entries.c.profile_id == loser)
                    .values(profile_id=survivor)
                )
            else:
                self.conn.execute(
                    update(flow_entries)
                    .where(flow_entries.c.flow_id == row["flow_id"], flow_entries.c.profile_id == survivor)
                    .values(entries=existing["entries"] + row["entries"],
                            last_entered_at=max(existing["last_entered_at"], row["last_entered_at"]))
                )
                self.conn.execute(
                    flow_entries.delete().where(
                        flow_entries.c.flow_id == row["flow_id"], flow_entries.c.profile_id == loser
                    )
                )

    def recompute_order_aggregates(self, profile_id: str, now: datetime) -> None:
        """Orders count, spend per currency, first/last order from the orders table: exact under
        duplicates, out-of-order events and merges. The profile row is locked before the orders
        are read, so two transactions adding orders of one profile both count."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(select(profiles.c.id).where(profiles.c.id == profile_id).with_for_update())
        self.conn.execute(
            update(profiles).where(profiles.c.id == profile_id)
            .values(**self.order_aggregates(profile_id), updated_at=now)
        )

    def order_aggregates(self, profile_id: str) -> dict[str, Any]:
        """The profile columns that summarise its orders, computed from the orders table."""
        return self.order_aggregates_of([profile_id])[profile_id]

    def order_aggregates_of(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``order_aggregates`` for many profiles: one query per 500 profiles."""
        wanted = sorted(set(profile_ids))
        out: dict[str, dict[str, Any]] = {
            p: {"orders_count": 0, "total_spent": {}, "first_order_at": None, "last_order_at": None} for p in wanted}
        for i in range(0, len(wanted), 500):
            live = and_(orders.c.profile_id.in_(wanted[i:i + 500]), orders.c.status != "cancelled")
            for pid, cur, count, first_at, last_at, total in self.conn.execute(
                select(orders.c.profile_id, orders.c.currency, func.count(), func.min(orders.c.placed_at),
                       func.max(orders.c.placed_at), func.sum(orders.c.total_minor - orders.c.refunded_minor))
                .where(live).group_by(orders.c.profile_id, orders.c.currency)
            ).all():
                agg = out[pid]
                agg["orders_count"] += int(count)
                agg["total_spent"][cur] = str(from_minor(int(total or 0), cur))
                first, last = _aware(first_at), _aware(last_at)
                if first is not None and (agg["first_order_at"] is None or first < agg["first_order_at"]):
                    agg["first_order_at"] = first
                if last is not None and (agg["last_order_at"] is None or last > agg["last_order_at"]):
                    agg["last_order_at"] = last
        return out

    def list_profiles(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(profiles).where(profiles.c.merged_into.is_(None))
            .order_by(profiles.c.created_at.desc()).limit(limit).offset(offset)
        ).mappings().all()
        return [dict(r) for r in rows]

    def count_profiles(self) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(profiles).where(profiles.c.merged_into.is_(None))
        ).scalar_one())

    def identities_of(self, profile_id: str) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            select(identities.c.kind, identities.c.value).where(identities.c.profile_id == profile_id)
        ).all()
        return [(r.kind, r.value) for r in rows]

    def profiles_page(self, after_id: str, limit: int) -> list[dict[str, Any]]:
        """A page of live profiles (id, timezone, properties) ordered by id, for sweeps."""
        rows = self.conn.execute(
            select(profiles.c.id, profiles.c.timezone, profiles.c.properties)
            .where(profiles.c.merged_into.is_(None), profiles.c.id > after_id)
            .order_by(profiles.c.id).limit(limit)
        ).mappings().all()
        return [dict(r) for r in rows]


def new_profile_row(profile_id: str, now: datetime, **values: Any) -> dict[str, Any]:
    """Every column of a new profile: nothing known, nothing consented."""
    row: dict[str, Any] = {
        "id": profile_id, "email": None, "phone": None, "locale": None, "timezone": None,
        "properties": {}, "tags": [],
        "consent_email": "never_asked", "consent_sms": "never_asked", "consent_push": "never_asked",
        "orders_count": 0, "total_spent": {}, "first_order_at": None, "last_order_at": None,
        "last_active_at": None, "created_at": now, "updated_at": now, "merged_into": None,
    }
    row.update(values)
    return row


def _aware(dt: Any) -> datetime | None:
    from storeflow.clock import utc

    if dt is None:
        return None
    if isinstance(dt, str):
        return utc(datetime.fromisoformat(dt))
    return utc(dt)


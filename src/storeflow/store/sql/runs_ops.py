"""Runs, their step log, event waits and re-entry bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, distinct, func, select, update

from storeflow.store.sql.bulk_ops import CHUNK as _CHUNK
from storeflow.store.sql.common import TxBase, as_dict
from storeflow.store.sql.dates_ops import changes_dates, note_profile_changes
from storeflow.store.sql.profiles_ops import follow_merges
from storeflow.store.tables import (
    carts,
    events,
    flow_entries,
    flows,
    orders,
    outbox,
    products,
    profiles,
    run_steps,
    run_waits,
    runs,
)

ACTIVE_STATUSES = ("active", "waiting")
# What the worker's batch operations read and write, by kind.
BATCH_TABLES: dict[str, Table] = {"event": events, "profile": profiles, "order": orders, "cart": carts,
                                  "product": products, "run": runs}


class RunsOps(TxBase):
    def create_run(self, row: dict[str, Any]) -> bool:
        """Insert a run; False if its active_key or dedupe_key is taken (already in the flow)."""
        stmt = self.upsert(runs).values(**row).on_conflict_do_nothing()
        created = self.conn.execute(stmt.returning(runs.c.id)).first() is not None
        if created:
            self.notify_after_commit("storeflow_runs")
        return created

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first())

    def claim_due_runs(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Due runs of live flows, locked for this transaction (SKIP LOCKED on PostgreSQL)."""
        q = (
            select(runs)
            .join(flows, flows.c.id == runs.c.flow_id)
            .where(runs.c.due_at <= now, flows.c.status == "live")
            .order_by(runs.c.due_at)
            .limit(limit)
        )
        result = self.conn.execute(self.store.lock_for_claim(q))
        names = list(result.keys())
        return [dict(zip(names, values, strict=True)) for values in result]

    def update_run(self, run_id: str, **values: Any) -> None:
        self.conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def append_steps(self, rows: list[dict[str, Any]]) -> None:
        """Add step-log rows in one round (executemany on SQLite, COPY on PostgreSQL)."""
        self.bulk_insert(run_steps, rows)

    def run_steps_of(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(run_steps).where(run_steps.c.run_id == run_id).order_by(run_steps.c.seq))
        return [dict(r) for r in rows.mappings()]

    def list_runs(self, *, flow_id: str | None = None, status: str | None = None, profile_id: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        q = select(runs)
        if flow_id:
            q = q.where(runs.c.flow_id == flow_id)
        if status:
            q = q.where(runs.c.status == status)
        if profile_id:
            q = q.where(runs.c.profile_id == profile_id)
        rows = self.conn.execute(q.order_by(runs.c.started_at.desc(), runs.c.id).limit(limit).offset(offset))
        return [dict(r) for r in rows.mappings()]

    def run_counts(self, flow_id: str | None = None) -> dict[str, int]:
        q = select(runs.c.status, func.count()).group_by(runs.c.status)
        if flow_id:
            q = q.where(runs.c.flow_id == flow_id)
        return {status: int(n) for status, n in self.conn.execute(q).all()}

    def run_counts_by_flow(self, flow_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """``run_counts`` for many flows in one query per 500: flow id -> status -> count; every
        asked-for flow is present (an empty dict when it has no runs)."""
        wanted = sorted(set(flow_ids))
        out: dict[str, dict[str, int]] = {f: {} for f in wanted}
        for i in range(0, len(wanted), _CHUNK):
            q = (select(runs.c.flow_id, runs.c.status, func.count()).where(runs.c.flow_id.in_(wanted[i:i + _CHUNK]))
                 .group_by(runs.c.flow_id, runs.c.status))
            for flow_id, status, n in self.conn.execute(q).all():
                out[flow_id][status] = int(n)
        return out

    def step_stats(self, flow_id: str) -> dict[str, dict[str, Any]]:
        """Per step of a flow, over all its versions, by step key (the step id): ``runs`` that
        logged at the step, step-log entries by ``log`` status, runs ``waiting`` there now, and
        ``messages`` it made by status. Four grouped queries, whatever the number of runs."""
        out: dict[str, dict[str, Any]] = {}

        def entry(key: str) -> dict[str, Any]:
            return out.setdefault(key, {"runs": 0, "log": {}, "waiting": 0, "messages": {}})

        of_flow = select(runs.c.id).where(runs.c.flow_id == flow_id).scalar_subquery()
        logged = run_steps.c.run_id.in_(of_flow)
        for key, n in self.conn.execute(select(run_steps.c.step_key, func.count(distinct(run_steps.c.run_id)))
                                        .where(logged).group_by(run_steps.c.step_key)).all():
            entry(key)["runs"] = int(n)
        for key, status, n in self.conn.execute(select(run_steps.c.step_key, run_steps.c.status, func.count())
                                                .where(logged).group_by(run_steps.c.step_key, run_steps.c.status)):
            entry(key)["log"][status] = int(n)
        for key, n in self.conn.execute(select(runs.c.cursor, func.count())
                                        .where(runs.c.flow_id == flow_id, runs.c.status == "waiting",
                                               runs.c.cursor.is_not(None)).group_by(runs.c.cursor)):
            entry(key)["waiting"] = int(n)
        for key, status, n in self.conn.execute(select(outbox.c.step_key, outbox.c.status, func.count())
                                                .where(outbox.c.flow_id == flow_id, outbox.c.step_key.is_not(None))
                                                .group_by(outbox.c.step_key, outbox.c.status)):
            entry(key)["messages"][status] = int(n)
        return out

    def next_due_at(self) -> datetime | None:
        """The earliest due time among runs of live flows. Reads the first due runs in due_at order
        (an index seek) and keeps the first of a live flow; only if all of those belong to paused
        flows does it ask the database to search further. (A MIN over a join with flows read every
        waiting run: 150 ms with a million on PostgreSQL, on every idle wake-up of a worker.)"""
        live = {str(r[0]) for r in self.conn.execute(select(flows.c.id).where(flows.c.status == "live"))}
        if not live:
            return None
        head = self.conn.execute(
            select(runs.c.due_at, runs.c.flow_id).where(runs.c.due_at.is_not(None))
            .order_by(runs.c.due_at).limit(64)).all()
        for due_at, flow_id in head:
            if flow_id in live:
                return due_at  # type: ignore[no-any-return]
        if len(head) < 64:
            return None
        value: datetime | None = self.conn.execute(
            select(func.min(runs.c.due_at)).where(runs.c.flow_id.in_(sorted(live)))
        ).scalar_one()
        return value

    # -- waits for events ----------------------------------------------------------------------
    def add_wait(self, run_id: str, profile_id: str, event_type: str, since: datetime) -> None:
        stmt = self.upsert(run_waits).values(run_id=run_id, profile_id=profile_id, event_type=event_type, since=since)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["run_id"], set_={"profile_id": profile_id, "event_type": event_type, "since": since}
        ))

    def waits_for(self, profile_id: str, event_type: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(run_waits).where(run_waits.c.profile_id == profile_id, run_waits.c.event_type == event_type)
        )
        return [dict(r) for r in rows.mappings()]

    def remove_wait(self, run_id: str) -> bool:
        return bool(self.conn.execute(run_waits.delete().where(run_waits.c.run_id == run_id)).rowcount)

    # -- re-entry ------------------------------------------------------------------------------
    def flow_entry(self, flow_id: str, profile_id: str) -> dict[str, Any] | None:
        return as_dict(self.conn.execute(
            select(flow_entries).where(flow_entries.c.flow_id == flow_id, flow_entries.c.profile_id == profile_id)
        ).mappings().first())

    def record_entry(self, flow_id: str, profile_id: str, at: datetime) -> None:
        stmt = self.upsert(flow_entries).values(flow_id=flow_id, profile_id=profile_id, entries=1, last_entered_at=at)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["flow_id", "profile_id"],
            set_={"entries": flow_entries.c.entries + 1, "last_entered_at": at},
        ))

    def lock_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row, locked until commit (FOR UPDATE on PostgreSQL) so a worker cannot race."""
        q = select(runs).where(runs.c.id == run_id)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return as_dict(self.conn.execute(q).mappings().first())

    # -- the worker's batch: many rows per statement ---------------------------------------------
    def rows_by_id(self, kind: str, ids: Iterable[str], *, lock: bool = False,
                   columns: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Rows of ``kind`` (event, profile, order, cart, product, run) by id, one query per 500 ids;
        ids with no row are absent. ``columns``: only these (and ``id``). With ``lock``, the rows
        are locked until commit, in id order (FOR UPDATE on PostgreSQL; SQLite's writer already
        holds the database). Profiles come as stored: merges are not followed (``profiles_by_id``).
        ``columns=()`` with ``lock``: only lock the rows, read nothing, return ``{}``."""
        table = BATCH_TABLES[kind]
        wanted = sorted(set(ids))
        if columns is not None and not (columns := list(columns)):
            if lock and self.conn.dialect.name == "postgresql":
                for i in range(0, len(wanted), _CHUNK):
                    self.conn.execute(select(table.c.id).where(table.c.id.in_(wanted[i:i + _CHUNK]))
                                      .order_by(table.c.id).with_for_update())
            return {}
        cols = [table.c.id, *(table.c[c] for c in columns if c != "id")] if columns is not None else [table]
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), _CHUNK):
            q = select(*cols).where(table.c.id.in_(wanted[i:i + _CHUNK])).order_by(table.c.id)
            if lock and self.conn.dialect.name == "postgresql":
                q = q.with_for_update()
            result = self.conn.execute(q)
            names = list(result.keys())
            for values in result:
                row = dict(zip(names, values, strict=True))
                found[row["id"]] = row
        return found

    def profiles_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Like ``get_profile`` for many ids at once: each asked-for id maps to the row of the
        profile it was merged into (the same dict for ids that resolve to one profile)."""
        return follow_merges(ids, lambda wanted: self.rows_by_id("profile", wanted))

    def open_carts_of(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``latest_open_cart`` for many profiles at once: profile id -> its latest open cart."""
        wanted = sorted(set(profile_ids))
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), _CHUNK):
            rows = self.conn.execute(
                select(carts).where(carts.c.profile_id.in_(wanted[i:i + _CHUNK]), carts.c.converted_at.is_(None))
            ).mappings()
            for r in rows:
                best = out.get(r["profile_id"])
                if best is None or r["last_activity_at"] > best["last_activity_at"]:
                    out[r["profile_id"]] = dict(r)
        return out

    def update_rows(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """Update many rows of ``kind`` by id: each dict holds ``id`` and the columns to set. One
        executemany per distinct set of columns (pipelined on PostgreSQL; an UPDATE from unnest()
        arrays measured no faster there: the index updates dominate)."""
        table = BATCH_TABLES[kind]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
        for group in groups.values():
            # SET takes the columns named in the parameters; the id goes by another name.
            params = [dict(row, k_id=row["id"]) for row in group]
            for p in params:
                del p["id"]
            self.conn.execute(update(table).where(table.c.id == bindparam("k_id")), params)
        if kind == "profile":
            note_profile_changes(self, [row["id"] for row in rows if changes_dates(row)])

    def update_runs(self, rows: list[dict[str, Any]]) -> None:
        """``update_run`` for many runs in one go (see ``update_rows``)."""
        self.update_rows("run", rows)

    def replace_waits(self, run_ids: Iterable[str], rows: list[dict[str, Any]]) -> None:
        """Remove the event waits of ``run_ids``, then add ``rows`` (run_id, profile_id, event_type,
        since): the end state of ``add_wait`` / ``remove_wait`` calls on those runs."""
        wanted = sorted(set(run_ids) | {r["run_id"] for r in rows})
        for i in range(0, len(wanted), _CHUNK):
            self.conn.execute(run_waits.delete().where(run_waits.c.run_id.in_(wanted[i:i + _CHUNK])))
        if rows:
            self.conn.execute(run_waits.insert(), rows)

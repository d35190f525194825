"""Ingest: commerce events through ``Storeflow.ingest`` in batches, with live flows; and its floor, the
same number of rows written straight into ``events`` with one executemany in one transaction (what the
database alone costs)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmarks.common import START, BenchmarkError, Figure, count_statements, open_storeflow
from benchmarks.targets import Target
from benchmarks.workload import STORE_FLOWS, commerce_events
from storeflow.clock import VirtualClock
from storeflow.store.tables import events


@dataclass(frozen=True)
class Sizes:
    events: int
    ingest_batch: int
    profiles: int


QUICK = Sizes(events=200, ingest_batch=100, profiles=40)
FULL = Sizes(events=20_000, ingest_batch=1_000, profiles=2_000)


def run(target: Target, quick: bool) -> list[Figure]:
    return ingest(target, QUICK if quick else FULL)


def ingest(target: Target, sizes: Sizes) -> list[Figure]:
    """Events/s through ``Storeflow.ingest`` with 5 live flows, the raw-insert floor, and their ratio."""
    with target.database() as url:
        clock = VirtualClock(START)
        sf = open_storeflow(url, clock)
        try:
            for text in STORE_FLOWS:
                sf.flows.apply(sf.flows.validate(text, "bench-flow.yaml"))
            batch = commerce_events(sizes.events, profiles=sizes.profiles, now=clock.now())
            statuses: dict[str, int] = {}
            runs_started = 0
            with count_statements(sf) as statements:
                started, cpu_started = time.perf_counter(), time.process_time()
                for i in range(0, len(batch), sizes.ingest_batch):
                    for result in sf.ingest(batch[i:i + sizes.ingest_batch]):
                        statuses[result.status] = statuses.get(result.status, 0) + 1
                        runs_started += len(result.runs_started)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with sf.store.transaction() as tx:
                stored = tx.count_events()
                runs_by_flow = {flow["id"]: sum(flow["runs"].values()) for flow in _flows(tx)}
        finally:
            sf.close()
    if statuses.get("accepted") != sizes.events:
        raise BenchmarkError(f"ingest accepted {statuses} of {sizes.events} events")
    through_engine = Figure(target.name, "ingest", sizes.events, "events", seconds, {
        "cpu_seconds": round(cpu, 3), "batch": sizes.ingest_batch, "profiles": sizes.profiles,
        "live_flows": len(STORE_FLOWS),
        "runs_started": runs_started, "runs_by_flow": runs_by_flow, "events_stored": stored,
        "event_mix": _mix(batch), "sql_statements": statements[0],
        "sql_per_event": round(statements[0] / sizes.events, 2),
    })
    floor = ingest_floor(target, batch)
    through_engine.details["floor_ratio"] = round(floor.rate / through_engine.rate, 1) if through_engine.rate else None
    return [through_engine, floor]


def _flows(tx: Any) -> list[dict[str, Any]]:
    flows: list[dict[str, Any]] = tx.list_flows()
    for flow in flows:
        flow["runs"] = tx.run_counts(flow["id"])
    return flows


def _mix(batch: list[dict[str, Any]]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for item in batch:
        mix[item["type"]] = mix.get(item["type"], 0) + 1
    return dict(sorted(mix.items()))


def ingest_floor(target: Target, batch: list[dict[str, Any]]) -> Figure:
    """The same events as rows of ``events``, written with one executemany in one transaction."""
    now = START
    profile_ids = {e["email"]: f"prof_{i:032x}" for i, e in enumerate({e["email"]: e for e in batch}.values())}
    rows = [{
        "id": f"evt_{i:032x}", "type": e["type"], "profile_id": profile_ids[e["email"]],
        "occurred_at": datetime.fromisoformat(e["occurred_at"]), "received_at": now, "source": "api",
        "idempotency_key": f"api:{e['id']}", "properties": e["properties"],
    } for i, e in enumerate(batch)]
    with target.database() as url:
        sf = open_storeflow(url, VirtualClock(START))  # the engine storeflow would use: same pragmas, same JSON
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            with sf.store.transaction() as tx:
                tx.conn.execute(events.insert(), rows)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with sf.store.transaction() as tx:
                stored = tx.count_events()
        finally:
            sf.close()
    if stored != len(rows):
        raise BenchmarkError(f"the floor stored {stored} of {len(rows)} rows")
    return Figure(target.name, "ingest floor", len(rows), "rows", seconds,
                  {"cpu_seconds": round(cpu, 3), "how": "one executemany of INSERT INTO events in one transaction"})

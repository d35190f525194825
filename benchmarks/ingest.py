"""Ingest, with the 47 live flows of a growing store (``benchmarks/flows47.py``).

* ``ingest api``: batches of 1,000 commerce events POSTed to ``/v1/events/batch`` of a real
  ``storeflow serve --api-only`` process (its own process, as in production); the client encodes
  JSON in this process. Profile resolution, state updates, flow matching and run creation included.
* ``ingest engine``: the same events through ``Storeflow.ingest`` in this process: the engine
  without HTTP, JSON and the API's validation.
* ``ingest floor``: the same events as rows of ``events``, written with one DBAPI ``executemany``
  in one transaction, values already encoded: what the database alone costs. Each ingest figure
  carries its ratio to the floor.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.common import START, BenchmarkError, Figure, count_statements, open_storeflow
from benchmarks.flows47 import apply_all
from benchmarks.server import bench_store, serve
from benchmarks.targets import Target
from benchmarks.workload import commerce_events
from storeflow.clock import VirtualClock


@dataclass(frozen=True)
class Sizes:
    events: int
    batch: int
    profiles: int

QUICK = Sizes(events=300, batch=100, profiles=60)
FULL = Sizes(events=30_000, batch=1_000, profiles=5_000)

def run(target: Target, quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    api = ingest_api(target, sizes)
    engine = ingest_engine(target, sizes)
    floor = ingest_floor(target, commerce_events(sizes.events, profiles=sizes.profiles, now=START))
    for fig in (api, engine):
        fig.details["floor_ratio"] = round(floor.rate / fig.rate, 1) if fig.rate else None
        fig.note += f"; floor {fig.details['floor_ratio']:g}x faster"
    return [api, engine, floor]

def _count(results: list[dict[str, Any]], statuses: dict[str, int]) -> int:
    runs = 0
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        runs += len(r.get("runs_started", ()))
    return runs

def ingest_api(target: Target, sizes: Sizes) -> Figure:
    """Events/s through HTTP: POST /v1/events/batch to a ``storeflow serve --api-only`` process."""
    with target.database() as url:
        flows, key = bench_store(url)
        events = commerce_events(sizes.events, profiles=sizes.profiles, now=datetime.now(UTC))
        bodies = [json.dumps({"events": events[i:i + sizes.batch]}).encode()
                  for i in range(0, len(events), sizes.batch)]
        statuses: dict[str, int] = {}
        with serve(url, "--api-only") as server, httpx.Client(
                base_url=server.base_url, timeout=300.0,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as client:
            cpu0 = server.cpu_now()
            started = time.perf_counter()
            runs_started = 0
            for body in bodies:
                response = client.post("/v1/events/batch", content=body)
                if response.status_code != 200:
                    raise BenchmarkError(f"POST /v1/events/batch: {response.status_code} {response.text[:300]}")
                runs_started += _count(response.json()["results"], statuses)
            seconds = time.perf_counter() - started
            server_cpu = server.cpu_now() - cpu0
    if statuses.get("accepted") != sizes.events:
        raise BenchmarkError(f"the API accepted {statuses} of {sizes.events} events")
    return Figure(target.name, "ingest api", sizes.events, "events", seconds, {
        "server_cpu_seconds": round(server_cpu, 3), "batch": sizes.batch, "profiles": sizes.profiles,
        "live_flows": flows, "runs_started": runs_started, "event_mix": _mix(events),
        "how": "POST /v1/events/batch over HTTP/1.1 keep-alive to storeflow serve --api-only (own process)",
    }, note=f"HTTP, {flows} live flows, batches of {sizes.batch:,}, {runs_started:,} runs started")

def ingest_engine(target: Target, sizes: Sizes) -> Figure:
    """Events/s through ``Storeflow.ingest`` in this process (no HTTP), with SQL statement counts."""
    with target.database() as url:
        clock = VirtualClock(START)
        sf = open_storeflow(url, clock)
        try:
            flows = apply_all(sf)
            events = commerce_events(sizes.events, profiles=sizes.profiles, now=clock.now())
            statuses: dict[str, int] = {}
            runs_started = 0
            with count_statements(sf) as statements:
                started, cpu_started = time.perf_counter(), time.process_time()
                for i in range(0, len(events), sizes.batch):
                    results = [r.as_json() for r in sf.ingest(events[i:i + sizes.batch])]
                    runs_started += _count(results, statuses)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with sf.store.transaction() as tx:
                stored = tx.count_events()
        finally:
            sf.close()
    if statuses.get("accepted") != sizes.events:
        raise BenchmarkError(f"ingest accepted {statuses} of {sizes.events} events")
    return Figure(target.name, "ingest engine", sizes.events, "events", seconds, {
        "cpu_seconds": round(cpu, 3), "batch": sizes.batch, "profiles": sizes.profiles, "live_flows": flows,
        "runs_started": runs_started, "events_stored": stored, "sql_statements": statements[0],
        "sql_per_event": round(statements[0] / sizes.events, 2),
    }, note=(f"in process, {flows} live flows, {runs_started:,} runs started, "
             f"{statements[0] / sizes.events:.2f} SQL statements/event"))

def _mix(batch: list[dict[str, Any]]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for item in batch:
        mix[item["type"]] = mix.get(item["type"], 0) + 1
    return dict(sorted(mix.items()))

def ingest_floor(target: Target, batch: list[dict[str, Any]], scenario: str = "ingest floor") -> Figure:
    """The same events as rows of ``events``: one DBAPI executemany in one transaction, every value
    already encoded (JSON text, datetimes as the backend stores them)."""
    profile_ids = {e["email"]: f"prof_{i:032x}" for i, e in enumerate({e["email"]: e for e in batch}.values())}
    with target.database() as url:
        sf = open_storeflow(url, VirtualClock(START))  # the schema and connection settings storeflow uses
        try:
            sqlite = url.startswith("sqlite")

            def when(value: str) -> Any:
                at = datetime.fromisoformat(value).astimezone(UTC)
                return at.replace(tzinfo=None).isoformat(sep=" ") if sqlite else at

            rows = [(f"evt_{i:032x}", e["type"], profile_ids[e["email"]], when(e["occurred_at"]),
                     when(START.isoformat()), "api", f"api:{e['id']}", json.dumps(e["properties"]))
                    for i, e in enumerate(batch)]
            mark = "?" if sqlite else "%s"
            sql = ("INSERT INTO events (id, type, profile_id, occurred_at, received_at, source, idempotency_key,"
                   f" properties) VALUES ({', '.join([mark] * 8)})")
            engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
            started, cpu_started = time.perf_counter(), time.process_time()
            with engine.begin() as conn:
                conn.exec_driver_sql(sql, rows)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with sf.store.transaction() as tx:
                stored = tx.count_events()
        finally:
            sf.close()
    if stored != len(rows):
        raise BenchmarkError(f"the floor stored {stored} of {len(rows)} rows")
    return Figure(target.name, scenario, len(rows), "rows", seconds,
                  {"cpu_seconds": round(cpu, 3), "how": "one DBAPI executemany of INSERT INTO events, one transaction"},
                  note="raw INSERT INTO events, one executemany, one transaction")

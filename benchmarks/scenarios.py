"""The scenarios. Each runs on a fresh database of one target and returns its figures.

* ``ingest``: commerce events through ``Storeflow.ingest`` in batches, with five live flows; and its
  floor, the same number of rows written straight into ``events`` with one executemany in one
  transaction (what the database alone costs).
* ``steps``: runs of a flow with a branch, tags, property writes and a wait, created by ingest and
  then drained with ``worker.run_batch()`` in a loop (the virtual clock jumps over the wait).

The engine runs on a ``VirtualClock`` so the same events start the same runs on every machine; the
figures are wall-clock time (``time.perf_counter``); each also records the CPU time of this process
(``cpu_seconds``): where wall time is well above it, the process waited for the database server or for
a CPU that something else was using.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select

from benchmarks.targets import Target
from benchmarks.workload import STEPS_FLOW, STEPS_FLOW_WAIT, STEPS_PER_RUN, STORE_FLOWS, commerce_events, step_triggers
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.store.tables import events, run_steps

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sizes:
    events: int
    ingest_batch: int
    profiles: int
    runs: int


QUICK = Sizes(events=200, ingest_batch=100, profiles=40, runs=40)
FULL = Sizes(events=20_000, ingest_batch=1_000, profiles=2_000, runs=5_000)


@dataclass
class Figure:
    backend: str
    scenario: str
    count: int
    unit: str  # what was counted: events, rows, steps
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "scenario": self.scenario, "count": self.count, "unit": self.unit,
                "seconds": round(self.seconds, 4), "per_second": round(self.rate, 1), "details": self.details}


class BenchmarkError(RuntimeError):
    """The engine did not do what the scenario expects: its figures would be meaningless."""


def _open(url: str, clock: VirtualClock) -> Storeflow:
    return Storeflow(Settings(database_url=url), clock=clock)


@contextmanager
def count_statements(sf: Storeflow) -> Iterator[list[int]]:
    """Counts the SQL statements the engine sends while the block runs (an executemany is one);
    yields a one-item list holding the count. Costs a Python call per statement, ~1 us."""
    engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
    counter = [0]

    def on_execute(*_args: Any) -> None:
        counter[0] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def ingest(target: Target, sizes: Sizes) -> list[Figure]:
    """Events/s through ``Storeflow.ingest`` with 5 live flows, the raw-insert floor, and their ratio."""
    with target.database() as url:
        clock = VirtualClock(START)
        sf = _open(url, clock)
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
        sf = _open(url, VirtualClock(START))  # the engine storeflow would use: same pragmas, same JSON
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


def steps(target: Target, sizes: Sizes) -> list[Figure]:
    """Steps/s: ``sizes.runs`` runs created, then advanced by ``worker.run_batch()`` until done."""
    with target.database() as url:
        clock = VirtualClock(START)
        sf = _open(url, clock)
        try:
            sf.flows.apply(sf.flows.validate(STEPS_FLOW, "bench-steps.yaml"))
            batch_size = sf.settings.worker_batch_size
            triggers = step_triggers(sizes.runs)
            created_started = time.perf_counter()
            for i in range(0, len(triggers), 1000):
                sf.ingest(triggers[i:i + 1000])
            created_seconds = time.perf_counter() - created_started

            batches = 0
            with count_statements(sf) as statements:
                started, cpu_started = time.perf_counter(), time.process_time()
                for _phase in range(2):  # up to the wait, then (an hour later) to the end
                    while sf.worker.run_batch().claimed:
                        batches += 1
                    clock.advance(STEPS_FLOW_WAIT + timedelta(seconds=1))
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with sf.store.transaction() as tx:
                logged = tx.conn.execute(select(func.count()).select_from(run_steps)).scalar_one()
                statuses = tx.run_counts()
        finally:
            sf.close()
    if statuses != {"completed": sizes.runs} or logged != sizes.runs * STEPS_PER_RUN:
        raise BenchmarkError(f"steps: runs {statuses}, {logged} steps logged; expected {sizes.runs} completed "
                             f"runs and {sizes.runs * STEPS_PER_RUN} steps")
    return [Figure(target.name, "steps", int(logged), "steps", seconds, {
        "cpu_seconds": round(cpu, 3), "runs": sizes.runs, "steps_per_run": STEPS_PER_RUN, "batches": batches,
        "worker_batch_size": batch_size,
        "runs_per_second": round(sizes.runs / seconds, 1) if seconds else None,
        "runs_created_seconds": round(created_seconds, 3), "sql_statements": statements[0],
        "sql_per_step": round(statements[0] / logged, 2) if logged else None,
    })]


SCENARIOS = {"ingest": ingest, "steps": steps}

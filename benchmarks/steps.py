"""Steps: runs of a flow with a branch, tags, property writes and a wait, created by ingest and then
drained with ``worker.run_batch()`` in a loop (the virtual clock jumps over the wait)."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from benchmarks.common import START, BenchmarkError, Figure, count_statements, open_storeflow
from benchmarks.targets import Target
from benchmarks.workload import STEPS_FLOW, STEPS_FLOW_WAIT, STEPS_PER_RUN, step_triggers
from storeflow.clock import VirtualClock
from storeflow.store.tables import run_steps

QUICK_RUNS = 40
FULL_RUNS = 5_000


def run(target: Target, quick: bool) -> list[Figure]:
    return steps(target, QUICK_RUNS if quick else FULL_RUNS)


def steps(target: Target, runs: int) -> list[Figure]:
    """Steps/s: ``runs`` runs created, then advanced by ``worker.run_batch()`` until done."""
    with target.database() as url:
        clock = VirtualClock(START)
        sf = open_storeflow(url, clock)
        try:
            sf.flows.apply(sf.flows.validate(STEPS_FLOW, "bench-steps.yaml"))
            batch_size = sf.settings.worker_batch_size
            triggers = step_triggers(runs)
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
    if statuses != {"completed": runs} or logged != runs * STEPS_PER_RUN:
        raise BenchmarkError(f"steps: runs {statuses}, {logged} steps logged; expected {runs} completed "
                             f"runs and {runs * STEPS_PER_RUN} steps")
    return [Figure(target.name, "steps", int(logged), "steps", seconds, {
        "cpu_seconds": round(cpu, 3), "runs": runs, "steps_per_run": STEPS_PER_RUN, "batches": batches,
        "worker_batch_size": batch_size,
        "runs_per_second": round(runs / seconds, 1) if seconds else None,
        "runs_created_seconds": round(created_seconds, 3), "sql_statements": statements[0],
        "sql_per_step": round(statements[0] / logged, 2) if logged else None,
    })]

"""Steps: runs of a flow with a branch, tags, property writes and a wait, created by ingest and then
drained with ``worker.run_batch()`` in a loop (the virtual clock jumps over the wait).

On PostgreSQL the same runs are also drained by 1 and then by 2 worker *processes* (each its own
``Storeflow`` calling ``run_batch()`` until nothing is due, a barrier, the clock past the wait,
again), to show how the figure scales with processes claiming the same due runs (SKIP LOCKED).
SQLite has one writer at a time, so more processes cannot add throughput there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, event, func, select

from benchmarks.common import START, BenchmarkError, Figure, count_statements, open_storeflow
from benchmarks.targets import Target
from benchmarks.workload import STEPS_FLOW, STEPS_FLOW_WAIT, STEPS_PER_RUN, step_triggers
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.store.factory import open_store
from storeflow.store.tables import run_steps

QUICK_RUNS = 40
FULL_RUNS = 5_000
PROCESS_COUNTS = (1, 2)

# A worker process: its own Storeflow on a virtual clock at START. Each "go" on stdin starts a phase
# (the second one with the clock past the wait): run_batch() until nothing is claimed, then a line
# with what it did.
_PROCESS_SCRIPT = r"""
import json, sys, time
from datetime import datetime, timedelta
from storeflow.app import Storeflow
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.store.factory import open_store
from storeflow.settings import Settings

url, start, wait_s = sys.argv[1], datetime.fromisoformat(sys.argv[2]), float(sys.argv[3])
clock = VirtualClock(start)
sf = Storeflow(Settings(database_url=url), clock=clock, migrate=False)
print("ready", flush=True)
for phase in range(2):
    if not sys.stdin.readline():
        break  # the benchmark ended early
    if phase:
        clock.advance(timedelta(seconds=wait_s))
    done = {"batches": 0, "steps": 0, "claimed": 0}
    cpu = time.process_time()
    while True:
        batch = sf.worker.run_batch()
        if not batch.claimed:
            break
        done["batches"] += 1
        done["steps"] += batch.steps
        done["claimed"] += batch.claimed
    done["cpu_seconds"] = time.process_time() - cpu
    print(json.dumps(done), flush=True)
sf.close()
"""


def run(target: Target, quick: bool) -> list[Figure]:
    runs = QUICK_RUNS if quick else FULL_RUNS
    figure = steps(target, runs)
    if target.name == "postgres":
        scaling = process_scaling(target, runs)
        figure.details.update(scaling)
        rates = " -> ".join(f"{scaling[f'processes_{n}_steps_per_second']:,.0f}" for n in PROCESS_COUNTS)
        figure.note += f"; 1 -> 2 processes: {rates} steps/s (x{scaling['process_scaling']})"
    return [figure]


def _apply_flow(url: str) -> int:
    """A fresh database migrated, with the flow live; the worker batch size."""
    sf = open_storeflow(url, VirtualClock(START))
    try:
        sf.flows.apply(sf.flows.validate(STEPS_FLOW, "bench-steps.yaml"))
        return sf.settings.worker_batch_size
    finally:
        sf.close()


def _create_runs(url: str, runs: int) -> float:
    """``runs`` due runs, started by ingest; the seconds it took."""
    sf = open_storeflow(url, VirtualClock(START))
    try:
        triggers = step_triggers(runs)
        started = time.perf_counter()
        for i in range(0, len(triggers), 1000):
            sf.ingest(triggers[i:i + 1000])
        return time.perf_counter() - started
    finally:
        sf.close()


def _check(url: str, runs: int, what: str) -> int:
    """The number of steps logged; raises unless every run completed with all its steps."""
    store = open_store(url)
    try:
        with store.transaction() as tx:
            logged = int(tx.conn.execute(select(func.count()).select_from(run_steps)).scalar_one())
            statuses = tx.run_counts()
    finally:
        store.close()
    if statuses != {"completed": runs} or logged != runs * STEPS_PER_RUN:
        raise BenchmarkError(f"{what}: runs {statuses}, {logged} steps logged; expected {runs} completed "
                             f"runs and {runs * STEPS_PER_RUN} steps")
    return logged


def steps(target: Target, runs: int) -> Figure:
    """Steps/s in this process: ``runs`` runs created, then advanced by ``worker.run_batch()``."""
    with target.database() as url:
        batch_size = _apply_flow(url)
        created_seconds = _create_runs(url, runs)
        clock = VirtualClock(START)
        sf = open_storeflow(url, clock)
        batches = 0
        try:
            with count_statements(sf) as statements, _server_cpu(sf) as server_cpu:
                started, cpu_started = time.perf_counter(), time.process_time()
                for _phase in range(2):  # up to the wait, then (an hour later) to the end
                    while sf.worker.run_batch().claimed:
                        batches += 1
                    clock.advance(STEPS_FLOW_WAIT + timedelta(seconds=1))
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        finally:
            sf.close()
        logged = _check(url, runs, "steps")
    rate = logged / seconds if seconds else 0.0
    return Figure(target.name, "steps", logged, "steps", seconds, {
        "cpu_seconds": round(cpu, 3), "steps_per_cpu_second": round(logged / cpu) if cpu else None,
        "runs": runs, "steps_per_run": STEPS_PER_RUN, "batches": batches, "worker_batch_size": batch_size,
        "runs_per_second": round(runs / seconds, 1) if seconds else None,
        "runs_created_seconds": round(created_seconds, 3), "sql_statements": statements[0],
        "sql_per_step": round(statements[0] / logged, 3) if logged else None,
        **({} if server_cpu[0] is None else {
            "server_cpu_seconds": round(server_cpu[0], 3),
            "steps_per_cpu_second_with_server": round(logged / (cpu + server_cpu[0])),
        }),
    }, note=f"{runs:,} runs x {STEPS_PER_RUN} steps in one process, {rate:,.0f} steps/s "
            f"({logged / cpu if cpu else 0:,.0f} per CPU second"
            + ("" if server_cpu[0] is None else f", {logged / (cpu + server_cpu[0]):,.0f} with the server's")
            + f"), {statements[0] / logged:.3f} SQL/step")


@contextmanager
def _server_cpu(sf: Storeflow) -> Iterator[list[float | None]]:
    """CPU seconds the PostgreSQL server processes of this engine's connections spent while the
    block ran (their /proc entries, so only with the server on this machine); [None] otherwise."""
    engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
    out: list[float | None] = [None]
    if engine.dialect.name != "postgresql":
        yield out
        return
    pids: set[int] = set()

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        pids.add(int(dbapi_conn.info.backend_pid))

    def cpu_of(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    with engine.connect() as conn:  # the pooled connection the worker will most likely use
        pids.add(int(conn.connection.dbapi_connection.info.backend_pid))  # type: ignore[union-attr]
    before = {pid: cpu_of(pid) for pid in pids}
    event.listen(engine, "checkout", on_checkout)
    try:
        yield out
    finally:
        event.remove(engine, "checkout", on_checkout)
    total = 0.0
    for pid in pids:
        now = cpu_of(pid)
        if now is None:
            return  # a backend gone (or not on this machine): no figure rather than a wrong one
        total += now - (before.get(pid) or 0.0)
    out[0] = total


class _Child:
    """One worker process, driven line by line over its stdin and stdout."""

    def __init__(self, url: str, log: IO[bytes]) -> None:
        wait = (STEPS_FLOW_WAIT + timedelta(seconds=1)).total_seconds()
        self.proc = subprocess.Popen([sys.executable, "-c", _PROCESS_SCRIPT, url, START.isoformat(), str(wait)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.results: list[dict[str, Any]] = []

    def expect(self, what: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line:
            raise BenchmarkError(f"steps worker process exited (code {self.proc.wait()}) before {what}")
        return line.strip()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """Let it finish (it exits after its second phase, or at the end of its input), else kill it."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def process_scaling(target: Target, runs: int) -> dict[str, Any]:
    """Steps/s of 1 and of 2 worker processes, each count on a fresh database holding ``runs`` due
    runs. The processes start while the runs are being created; timing starts at the first "go"."""
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="storeflow-steps-")))
        rounds = []
        for n in PROCESS_COUNTS:
            url = stack.enter_context(target.database())
            _apply_flow(url)  # migrated: the children open it without migrating
            log = stack.enter_context((logdir / f"workers-{n}.log").open("wb"))
            children = [_Child(url, log) for _ in range(n)]
            for child in children:
                stack.callback(child.close)
            rounds.append((n, url, children))
        for _n, url, _children in rounds:
            _create_runs(url, runs)
        for n, url, children in rounds:
            for child in children:
                if child.expect("ready") != "ready":
                    raise BenchmarkError("steps worker process did not start")
            started = time.perf_counter()
            for _phase in range(2):
                for child in children:
                    child.go()
                for child in children:
                    child.results.append(json.loads(child.expect("the end of a phase")))
            seconds = time.perf_counter() - started
            logged = _check(url, runs, f"steps with {n} processes")
            done = [sum(r["steps"] for r in child.results) for child in children]
            if sum(done) != logged:
                raise BenchmarkError(f"{n} processes reported {done} steps, {logged} logged")
            out[f"processes_{n}_steps_per_second"] = round(logged / seconds, 1)
            out[f"processes_{n}_seconds"] = round(seconds, 3)
            out[f"processes_{n}_steps_each"] = done
            out[f"processes_{n}_cpu_seconds_each"] = [round(sum(r["cpu_seconds"] for r in child.results), 3)
                                                      for child in children]
    first, last = (out[f"processes_{n}_steps_per_second"] for n in (PROCESS_COUNTS[0], PROCESS_COUNTS[-1]))
    out["process_scaling"] = round(last / first, 2) if first else None
    return out


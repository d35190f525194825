"""Timers: N runs asleep in a ``wait:`` step, ``rate`` of them coming due each second over a window of
``window`` seconds, the rest due days away. A real storeflow worker (``Storeflow.serve_worker`` on the
system clock, as ``storeflow serve --worker-only`` runs it) in its own process fires them; how late
each fired is, the worker's memory with 100k and 1M waiting, and (PostgreSQL) the same load through
procrastinate's scheduled jobs (``benchmarks/timers_peer.py``), in the same run, on the same server.

Seeding: one run is started by the engine itself (ingest on a virtual clock set to now, drained to
its wait), and its rows (run, profile, logged steps) are cloned with bulk inserts, every time in them
shifted so each clone is that run started 30 days before its due time. Clones share the template's
trigger event (the worker reads it by primary key either way). The due clones are written last, once
the worker process has started, so their window opens ``lead`` seconds after the seeding ends.

Lateness: the fired step's logged time (``run_steps.at``, microseconds, the batch's clock reading
taken just before its claim) minus the run's due time; ``committed`` adds the batch's duration (the
step is visible to others once its batch commits). Runs not fired when the worker is stopped count
with the time they had waited by then (a lower bound), and the figure says so.
"""

from __future__ import annotations

import bisect
import json
import multiprocessing as mp
import random
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from sqlalchemy import Engine, select

from benchmarks.common import BenchmarkError, Figure, open_storeflow
from benchmarks.targets import Target
from storeflow.app import Storeflow
from storeflow.clock import SystemClock, VirtualClock
from storeflow.settings import Settings
from storeflow.store.tables import profiles, run_steps, runs

TIMER_FLOW = """
id: bench-timer
name: Timer benchmark
status: live
trigger:
  event: timer_started
steps:
  - wait: 30d
  - action: note
    text: fired
"""
FLOW_ID = "bench-timer"
WAIT = timedelta(days=30)
FIRED_KIND = "action:note"
CHUNK = 10_000


@dataclass(frozen=True)
class Load:
    waiting: int  # runs asleep when the window opens, due or not
    rate: int  # runs coming due per second in the window
    window: float  # seconds
    lead: float  # seconds between the end of the seeding and the window's first due time
    drain_cap: float  # give up this long after the window closes (a worker far too slow)

    @property
    def due(self) -> int:
        return int(self.rate * self.window)


QUICK = Load(waiting=2_000, rate=200, window=2.0, lead=0.5, drain_cap=20.0)
FULL = Load(waiting=1_000_000, rate=5_000, window=16.0, lead=2.0, drain_cap=60.0)
FULL_SMALL = 100_000  # the same due load with 100k waiting: memory must not depend on the number waiting


def run(target: Target, quick: bool) -> list[Figure]:
    load = QUICK if quick else FULL
    rss_by_waiting: dict[str, float] = {}
    small: dict[str, Any] | None = None
    if not quick:
        small_load = Load(FULL_SMALL, load.rate, load.window, load.lead, load.drain_cap)
        with target.database() as url:
            small = storeflow_timers(url, small_load)
        rss_by_waiting[str(FULL_SMALL)] = small["worker_peak_rss_mb"]
    with target.database() as url:
        main = storeflow_timers(url, load)
    rss_by_waiting[str(load.waiting)] = main["worker_peak_rss_mb"]
    main["worker_peak_rss_mb_by_waiting"] = rss_by_waiting
    if small is not None:
        main["with_100k_waiting"] = {k: small[k] for k in ("late_p50_s", "late_p99_s", "late_max_s",
                                                           "fired_per_second", "worker_peak_rss_mb",
                                                           "seed_seconds")}
    figures = [_figure(target.name, "timers", load, main)]
    if target.name == "postgres":
        from benchmarks.timers_peer import procrastinate_timers

        with target.database() as url:
            peer = procrastinate_timers(url, load)
        ratio = {
            "late_p99_ratio": _ratio(main["late_p99_s"], peer["late_p99_s"]),
            "late_p50_ratio": _ratio(main["late_p50_s"], peer["late_p50_s"]),
            "fired_per_second_ratio": _ratio(main["fired_per_second"], peer["fired_per_second"]),
            "capacity_ratio": _ratio(main["capacity_per_second"], peer["capacity_per_second"]),
        }
        # procrastinate's lateness is a lower bound when it left jobs unrun: the ratio is then an upper bound
        ratio["lateness_ratios_are_upper_bounds"] = bool(peer["unfired"])
        main["vs_procrastinate"] = ratio
        peer["vs_storeflow"] = ratio
        bound = "≤" if peer["unfired"] else ""
        figures[0].note += (f"; vs procrastinate: p99 x{bound}{ratio['late_p99_ratio']}, "
                            f"fired/s x{ratio['fired_per_second_ratio']}")
        figures.append(_figure(target.name, "timers procrastinate", load, peer))
    return figures


def _figure(backend: str, scenario: str, load: Load, d: dict[str, Any]) -> Figure:
    bound = "≥" if d["unfired"] else ""
    note = (f"{load.waiting:,} waiting, {load.rate:,}/s due for {load.window:g}s: late p50 {bound}{d['late_p50_s']}s "
            f"p99 {bound}{d['late_p99_s']}s max {bound}{d['late_max_s']}s (target p99 ≤ 1s); "
            f"worker RSS {d['worker_peak_rss_mb']} MB")
    if d["unfired"]:
        note += f"; {d['unfired']:,} not fired after {load.drain_cap:g}s"
    return Figure(backend, scenario, d["fired"], "runs fired" if scenario == "timers" else "jobs run",
                  d["fire_seconds"], d, note)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# -- lateness ------------------------------------------------------------------------------------

def lateness_summary(late: Sequence[float], unfired_late: Sequence[float], fired_at: Sequence[float],
                     first_due: float, load: Load) -> dict[str, Any]:
    """Percentiles over every due run: fired ones by their lateness, unfired ones by how long they had
    waited when the worker was stopped (a lower bound)."""
    every = sorted([*late, *unfired_late])
    if not every:
        raise BenchmarkError("timers: no run came due")

    def pct(p: float) -> float:
        return round(every[min(len(every) - 1, int(p * len(every)))], 4)

    last = max(fired_at) if fired_at else first_due
    span = max(last - first_due, 1e-6)
    return {"late_p50_s": pct(0.50), "late_p90_s": pct(0.90), "late_p99_s": pct(0.99),
            "late_max_s": round(every[-1], 4), "late_min_s": round(every[0], 4),
            "due": load.due, "fired": len(late), "unfired": len(unfired_late),
            "fire_seconds": round(span, 4), "fired_per_second": round(len(late) / span, 1),
            "offered_per_second": load.rate, "window_seconds": load.window}


def rss_mb(pid: int | None = None) -> float | None:
    """Resident memory of a process (this one by default), from /proc (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid or 'self'}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (Linux; ru_maxrss would include the parent's peak from before
    the exec of a spawned process), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def watch(proc: mp.process.BaseProcess, done: Callable[[], bool], until: float) -> list[float]:
    """Wait until ``done()`` or the wall time ``until``, sampling the process's RSS every 0.25 s."""
    samples: list[float] = []
    while not done() and time.time() < until and proc.is_alive():
        rss = rss_mb(proc.pid)
        if rss is not None:
            samples.append(rss)
        time.sleep(0.25)
    return samples


# -- seeding -------------------------------------------------------------------------------------

def _shifter(value: Any, base: datetime) -> Callable[[datetime], Any]:
    """A function of a due time giving ``value`` with each of its times (datetimes, ISO strings)
    moved as far as that due time is from ``base``."""
    if isinstance(value, datetime):
        off = value - base
        return lambda due: due + off
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return lambda due: value
        if parsed.tzinfo is not None:
            off = parsed - base
            return lambda due: (due + off).isoformat()
    if isinstance(value, dict):
        parts = [(k, _shifter(v, base)) for k, v in value.items()]
        return lambda due: {k: f(due) for k, f in parts}
    if isinstance(value, list):
        items = [_shifter(v, base) for v in value]
        return lambda due: [f(due) for f in items]
    return lambda due: value


@dataclass
class Template:
    run: dict[str, Any]
    profile: dict[str, Any]
    steps: list[dict[str, Any]]
    due: datetime


def template(url: str) -> Template:
    """One run started by the engine and drained to its wait; the rows the clones copy."""
    sf = open_storeflow(url, VirtualClock(datetime.now(UTC)))
    try:
        sf.flows.apply(sf.flows.validate(TIMER_FLOW, "bench-timer.yaml"))
        sf.ingest([{"type": "timer_started", "email": "timer-0@bench.example"}])
        sf.drain()
        with sf.store.transaction() as tx:
            rows = [dict(r) for r in tx.conn.execute(select(runs)).mappings()]
            if len(rows) != 1 or rows[0]["status"] != "waiting" or rows[0]["due_at"] is None:
                raise BenchmarkError(f"timers: the template run is not waiting: {rows}")
            run = rows[0]
            profile = dict(tx.conn.execute(select(profiles).where(profiles.c.id == run["profile_id"]))
                           .mappings().one())
            steps = [dict(r) for r in tx.conn.execute(select(run_steps).where(run_steps.c.run_id == run["id"]))
                     .mappings()]
    finally:
        sf.close()
    if run["due_at"] - run["started_at"] != WAIT:
        raise BenchmarkError(f"timers: the template run waits {run['due_at'] - run['started_at']}, not {WAIT}")
    for step in steps:
        step.pop("id")
    return Template(run, profile, steps, run["due_at"])


class Seeder:
    """Clones of the template run due at given times, by bulk inserts of CHUNK rows. With ``full``,
    each clone also gets its own profile and the template's logged steps (what the worker reads and
    writes when it fires); without, only its ``runs`` row (runs that never come due in the benchmark).
    Ids count up from a random start (fast to index) in the engine's format."""

    def __init__(self, engine: Engine, tmpl: Template) -> None:
        self.engine, self.tmpl = engine, tmpl
        base = tmpl.due
        self.run_fn = _shifter({k: v for k, v in tmpl.run.items()
                                if k not in ("id", "profile_id", "active_key")}, base)
        self.profile_fn = _shifter({k: v for k, v in tmpl.profile.items() if k not in ("id", "email")}, base)
        self.step_fns = [_shifter({k: v for k, v in s.items() if k != "run_id"}, base) for s in tmpl.steps]
        self.run_prefix = str(tmpl.run["id"]).split("_")[0]
        self.profile_prefix = str(tmpl.profile["id"]).split("_")[0]
        self.next_id = random.getrandbits(120) << 4
        self.rows = 0

    def seed(self, dues: Iterator[datetime] | Sequence[datetime], *, full: bool) -> list[str]:
        """Insert one waiting run per due time; returns their ids in the same order."""
        ids: list[str] = []
        batch: list[datetime] = []
        for due in dues:
            batch.append(due)
            if len(batch) == CHUNK:
                ids += self._insert(batch, full)
                batch = []
        if batch:
            ids += self._insert(batch, full)
        return ids

    def _insert(self, dues: list[datetime], full: bool) -> list[str]:
        run_rows, profile_rows, step_rows, ids = [], [], [], []
        for due in dues:
            self.next_id += 1
            n = self.next_id
            run_id, profile_id = f"{self.run_prefix}_{n:032x}", f"{self.profile_prefix}_{n:032x}"
            run_rows.append({**self.run_fn(due), "id": run_id, "profile_id": profile_id,
                             "active_key": f"{FLOW_ID}:{profile_id}"})
            if full:
                profile_rows.append({**self.profile_fn(due), "id": profile_id,
                                     "email": f"timer-{n:x}@bench.example"})
                step_rows += [{**f(due), "run_id": run_id} for f in self.step_fns]
            ids.append(run_id)
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA cache_size=-262144")  # this connection: 256 MiB of pages
            for table, rows in ((profiles, profile_rows), (runs, run_rows), (run_steps, step_rows)):
                if rows:
                    conn.execute(table.insert(), rows)
        self.rows += len(run_rows) + len(profile_rows) + len(step_rows)
        return ids


def far_dues(count: int, start: datetime) -> Iterator[datetime]:
    """``count`` due times spread over days 1 to 29 from ``start``: never due during the benchmark."""
    span = timedelta(days=28).total_seconds()
    for i in range(count):
        yield start + timedelta(days=1, seconds=span * i / max(count, 1))


def window_dues(load: Load, first: datetime) -> list[datetime]:
    return [first + timedelta(seconds=i / load.rate) for i in range(load.due)]


# -- the storeflow worker process ----------------------------------------------------------------

def _storeflow_worker(url: str, conn: Connection, go: MpEvent, stop: MpEvent, fired: Synchronized[int]) -> None:
    """``storeflow serve --worker-only`` (``Storeflow.serve_worker`` on the system clock), counting what
    each batch claimed and when it started and ended."""
    sf = Storeflow(Settings(database_url=url), clock=SystemClock())
    batches: list[tuple[float, float, int]] = []
    inner = sf.worker.run_batch

    def timed() -> Any:
        t0 = time.time()
        result = inner()
        t1 = time.time()
        if result.claimed:
            batches.append((t0, t1, result.claimed))
            with fired.get_lock():
                fired.value += result.claimed
        return result

    sf.worker.run_batch = timed  # type: ignore[method-assign]
    conn.send({"rss_ready_mb": rss_mb()})
    go.wait()
    stopping = threading.Event()

    def on_stop() -> None:
        stop.wait()
        stopping.set()
        sf.wake()

    threading.Thread(target=on_stop, daemon=True).start()
    cpu = time.process_time()
    sf.serve_worker(stopping)
    conn.send({"batches": batches, "cpu_seconds": round(time.process_time() - cpu, 3),
               "rss_end_mb": rss_mb(), "peak_rss_mb": peak_rss_mb()})
    sf.close()


def storeflow_timers(url: str, load: Load) -> dict[str, Any]:
    tmpl = template(url)
    sf = open_storeflow(url, SystemClock())  # its engine, for the bulk inserts and the read-back
    engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    go, stop = ctx.Event(), ctx.Event()
    fired = ctx.Value("q", 0)
    proc = ctx.Process(target=_storeflow_worker, args=(url, child, go, stop, fired), daemon=True)
    try:
        proc.start()  # it imports and opens the store while the far runs are written
        seeder = Seeder(engine, tmpl)
        started = time.perf_counter()
        far = load.waiting - 1 - load.due  # the template run is one of the waiting
        seeder.seed(far_dues(far, datetime.now(UTC)), full=False)
        if engine.dialect.name == "postgresql":  # as autovacuum would have, after a million inserts
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE runs")
        far_seconds = time.perf_counter() - started
        ready = parent.recv()
        # the due runs last: their window opens `lead` seconds after they are written
        per_run = far_seconds / far if far > 0 else 0.0002  # a due run is three rows, a far one one
        first = datetime.now(UTC) + timedelta(seconds=per_run * load.due * 3 + load.lead)
        dues = window_dues(load, first)
        due_started = time.perf_counter()
        due_ids = seeder.seed(dues, full=True)
        seed_seconds = far_seconds + time.perf_counter() - due_started
        headroom = (first - datetime.now(UTC)).total_seconds()
        go.set()
        samples = watch(proc, lambda: fired.value >= load.due,
                        first.timestamp() + load.window + load.drain_cap)
        stopped_at = time.time()
        stop.set()
        result = parent.recv() if parent.poll(60) else {}
        proc.join(30)
        due_of = {rid: d.timestamp() for rid, d in zip(due_ids, dues, strict=True)}
        with sf.store.read() as tx:
            fired_rows = tx.conn.execute(select(run_steps.c.run_id, run_steps.c.at)
                                         .where(run_steps.c.kind == FIRED_KIND)).all()
            counts = tx.run_counts(FLOW_ID)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
        child.close()
        sf.close()
    if not result:
        raise BenchmarkError("timers: the worker process did not report")
    late, fired_at, committed = [], [], []
    batches: list[tuple[float, float, int]] = result["batches"]
    starts = [b[0] for b in batches]
    for run_id, at in fired_rows:
        due = due_of.pop(run_id, None)
        if due is None:
            raise BenchmarkError(f"timers: run {run_id} fired but was not due")
        ts = at.timestamp()
        late.append(ts - due)
        i = bisect.bisect_right(starts, ts) - 1
        end = batches[i][1] if i >= 0 and batches[i][0] <= ts <= batches[i][1] else ts
        committed.append(end - due)
        fired_at.append(end)
    unfired = [stopped_at - due for due in due_of.values()]
    if counts.get("completed", 0) != len(late) or counts.get("waiting", 0) != load.waiting - len(late):
        raise BenchmarkError(f"timers: runs {counts} after {len(late)} fired of {load.waiting} waiting")
    out = lateness_summary(late, unfired, fired_at, dues[0].timestamp(), load)
    busy = sum(b[1] - b[0] for b in batches)
    committed.sort()
    out.update({
        "waiting": load.waiting,
        "committed_late_p50_s": round(committed[len(committed) // 2], 4) if committed else None,
        "committed_late_p99_s": round(committed[int(0.99 * len(committed))], 4) if committed else None,
        "capacity_per_second": round(sum(b[2] for b in batches) / busy, 1) if busy else None,
        "batches": len(batches), "mean_batch": round(sum(b[2] for b in batches) / len(batches), 1) if batches else 0,
        "worker_cpu_seconds": result["cpu_seconds"],
        "worker_rss_ready_mb": ready["rss_ready_mb"], "worker_rss_end_mb": result["rss_end_mb"],
        "worker_peak_rss_mb": result["peak_rss_mb"],
        "worker_rss_sampled_max_mb": max(samples) if samples else None,
        "seed_seconds": round(seed_seconds, 3), "seed_rows": seeder.rows,
        "seed_rows_per_second": round(seeder.rows / seed_seconds, 1),
        "seed_headroom_s": round(headroom, 3),
        "worker_stopped_after_s": round(stopped_at - dues[0].timestamp(), 3),
    })
    return out


def dump(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, default=str)


if __name__ == "__main__":  # a single size by hand: python -m benchmarks.timers [waiting] [url]
    import sys

    from benchmarks.targets import SqliteTarget

    n = int(sys.argv[1]) if len(sys.argv) > 1 else QUICK.waiting
    with SqliteTarget().database() as db:
        url = sys.argv[2] if len(sys.argv) > 2 else db
        print(dump(storeflow_timers(url, Load(n, QUICK.rate, QUICK.window, QUICK.lead, QUICK.drain_cap))))

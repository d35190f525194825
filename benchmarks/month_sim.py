"""The month itself, run in a child process by :mod:`benchmarks.month` (so its peak RSS is its own).

The demo's simulation (``storeflow.simulate``: catalog, customers, traffic model, email engagement)
with the 47 flows of :mod:`benchmarks.flows47`, on a virtual clock, sending email over SMTP to a
mailbox that the parent process runs. Every call into the engine is timed (exclusive time: a nested
call, such as the dispatcher ingesting ``message_sent`` events, counts for the inner part), so the
wall time splits into generating traffic, ingest, worker, scheduler, sending and the simulator's own
reads.
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

PARTS = ("ingest", "worker", "scheduler", "sending", "tracking", "sim_reads")


class Timers:
    """Exclusive wall time per part, for methods wrapped on live objects."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._stack: list[list[float]] = []  # [start, time spent in nested timed calls]

    def wrap(self, obj: Any, attr: str, part: str, on_result: Callable[[Any], None] | None = None) -> None:
        inner = getattr(obj, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.perf_counter(), 0.0]
            self._stack.append(frame)
            try:
                result = inner(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.perf_counter() - frame[0]
                self.seconds[part] += spent - frame[1]
                self.calls[part] += 1
                if self._stack:
                    self._stack[-1][1] += spent
            if on_result is not None:
                on_result(result)
            return result

        setattr(obj, attr, timed)


@dataclass(frozen=True)
class MonthSpec:
    url: str
    smtp_port: int
    customers: int
    products: int
    days: int
    start: datetime
    currency: str = "IDR"
    seed: int = 7
    progress: bool = False  # a line per simulated day on stderr
    import_customers: bool = True  # the customer list is imported first
    budget_s: float | None = None  # stop after the first simulated day that ends past this (seconds of the month)


def peak_rss_mb() -> float:
    """This process's peak resident set size: VmHWM, which starts afresh at exec. (ru_maxrss of a
    spawned child starts at its parent's peak, which after other scenarios is not the month's.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def simulate_month(spec: MonthSpec) -> dict[str, Any]:
    """Runs the month; returns the figures (plain data, for the parent process)."""
    from benchmarks.flows47 import apply_all
    from storeflow.app import Storeflow
    from storeflow.clock import VirtualClock
    from storeflow.settings import load_settings
    from storeflow.simulate.catalog import build_catalog
    from storeflow.simulate.people import build_people
    from storeflow.simulate.traffic import Simulation
    from storeflow.simulate.traffic_model import TrafficModel

    t0, cpu0 = time.perf_counter(), time.process_time()
    rss_at_start = peak_rss_mb()
    settings = load_settings(
        database_url=spec.url, timezone="Asia/Jakarta", currency=spec.currency, locale="id_ID",
        default_phone_region="ID", smtp_host="127.0.0.1", smtp_port=spec.smtp_port, smtp_security="none",
        smtp_username=None, smtp_password=None, email_from="Toko Rimba <halo@demo.store>",
        team_emails=["team@demo.store"], email_marketing_requires_opt_in=True, slack_webhook_url=None,
        sms_provider="none", webhook_allow_private=False, public_url="http://127.0.0.1:8787")
    clock = VirtualClock(spec.start)
    sf = Storeflow(settings, clock=clock)
    timers = Timers()
    steps = [0]
    try:
        flows = apply_all(sf)
        model = TrafficModel()
        catalog = build_catalog(spec.seed, spec.currency, spec.products,
                                expected_units=model.expected_units(spec.customers, spec.days))
        people = build_people(spec.seed, spec.currency, spec.customers)
        build_s = time.perf_counter() - t0
        rss_after_people = peak_rss_mb()
        sim = Simulation(sf, catalog, people, start=spec.start, days=spec.days, seed=spec.seed, model=model)
        del people  # the simulation keeps what it needs
        import_started = time.perf_counter()
        imported = sim.import_customers() if spec.import_customers else 0
        import_s = time.perf_counter() - import_started
        if spec.progress:
            print(f"month: imported {imported:,} customers in {import_s:.0f}s, rss {peak_rss_mb():.0f} MB",
                  file=sys.stderr, flush=True)

        def count_steps(batch: Any) -> None:
            steps[0] += int(batch.steps)

        timers.wrap(sf.ingestor, "ingest", "ingest")
        timers.wrap(sf.worker, "run_batch", "worker", count_steps)
        timers.wrap(sf.worker, "next_due_at", "worker")
        timers.wrap(sf.scheduler, "tick", "scheduler")
        timers.wrap(sf.scheduler, "next_at", "scheduler")
        timers.wrap(sf.dispatcher, "run_batch", "sending")
        timers.wrap(sf.dispatcher, "next_at", "sending")
        for name in ("record_open", "record_click", "unsubscribe"):
            timers.wrap(sf.messages, name, "tracking")
        timers.wrap(sim, "_read_mail", "sim_reads")
        timers.wrap(sim, "_refresh_visible", "sim_reads")

        day_started = [time.perf_counter()]

        def progress(day: int, days: int) -> None:
            now = time.perf_counter()
            print(f"month: day {day}/{days}, {now - t0:.0f}s, day {now - day_started[0]:.1f}s, "
                  f"{sim.stats.events:,} events, {steps[0]:,} steps, rss {peak_rss_mb():.0f} MB",
                  file=sys.stderr, flush=True)
            day_started[0] = now

        run_started = time.perf_counter()
        budget = spec.budget_s

        def over_budget() -> bool:
            return budget is not None and time.perf_counter() - run_started > budget

        stats = sim.run(progress if spec.progress else None, over_budget)
        run_s = time.perf_counter() - run_started
        counted = _count(sf)
    finally:
        sf.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    timed = sum(timers.seconds.values())
    split = {part: round(timers.seconds[part], 2) for part in PARTS}
    split["traffic_generation"] = round(run_s - timed, 2)
    return {
        "wall_s": wall, "cpu_s": cpu, "run_s": run_s, "imported": imported, "import_s": import_s,
        "build_s": build_s, "setup_s": stats.setup_s, "flows": flows,
        "sim_events": stats.events, "steps": steps[0], "time_split_s": split, "days_done": stats.days_done,
        "calls": dict(timers.calls), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_at_start, 1), "rss_after_people_mb": round(rss_after_people, 1),
        "sim": {"visits": stats.visits, "carts": stats.carts, "checkouts": stats.checkouts, "orders": stats.orders,
                "subscribers": stats.subscribers, "opens": stats.opens, "clicks": stats.clicks,
                "unsubscribes": stats.unsubscribes, "restocks": stats.restocks, "duplicates": stats.duplicates,
                "rejected": stats.rejected, "errors": stats.errors[:5]},
        **counted,
    }


def _count(sf: Any) -> dict[str, Any]:
    """What the store holds at the end: events, runs by status, steps logged, messages."""
    from storeflow.store.tables import events, outbox, profiles, run_steps

    with sf.store.transaction() as tx:
        conn = tx.conn
        stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
        by_type = dict(conn.execute(select(events.c.type, func.count()).group_by(events.c.type)).all())
        logged = conn.execute(select(func.count()).select_from(run_steps)).scalar_one()
        profile_count = conn.execute(select(func.count()).select_from(profiles)).scalar_one()
        messages = {f"{channel}/{status}": n for channel, status, n in conn.execute(
            select(outbox.c.channel, outbox.c.status, func.count()).group_by(outbox.c.channel, outbox.c.status))}
        runs = tx.run_counts()
    return {"events_stored": int(stored), "events_by_type": {str(k): int(v) for k, v in by_type.items()},
            "steps_logged": int(logged), "profiles": int(profile_count), "messages": messages,
            "runs": {str(k): int(v) for k, v in runs.items()}}

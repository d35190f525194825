"""A growing store's month: 180,000 customers, the 47 live flows of :mod:`benchmarks.flows47`, and a
simulated month of the demo's traffic (``storeflow.simulate``) on the virtual clock, with email sent
over SMTP to a local mailbox.

The month runs in a child process (multiprocessing, spawn), so its peak RSS is its own; the mailbox
(an SMTP server that keeps every message as a file) runs in this process, as a mail server would run
beside storeflow. Targets (issue 4, 2-core machine): the month in under 10 minutes, peak memory under
1 GB. Quick mode: a few hundred customers and two days.

    .venv/bin/python -m benchmarks.month --customers 18000 --days 30 --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Final

from benchmarks.common import START, BenchmarkError, Figure
from benchmarks.month_sim import MonthSpec, simulate_month
from benchmarks.targets import DEFAULT_POSTGRES_URL, PostgresTarget, SqliteTarget, Target
from storeflow.simulate.mailbox import Mailbox

FULL_CUSTOMERS: Final = 180_000
FULL_DAYS: Final = 30
QUICK_CUSTOMERS: Final = 300
QUICK_DAYS: Final = 2
TARGET_SECONDS: Final = 600.0
TARGET_RSS_MB: Final = 1024.0
# The full month does not fit in a benchmark run yet: it stops after the first simulated day that ends
# past this many seconds, and the month's time is extrapolated from the days done (said in the figure).
FULL_BUDGET_S: Final = float(os.environ.get("STOREFLOW_BENCH_MONTH_BUDGET_S", "600"))


def products_for(customers: int) -> int:
    """A catalog that grows with the store: the demo's 300 products at 3,000 customers, at most 1,500."""
    return max(40, min(1500, customers // 10))


def run(target: Target, quick: bool) -> list[Figure]:
    if quick:
        return [month(target, QUICK_CUSTOMERS, QUICK_DAYS)]
    return [month(target, FULL_CUSTOMERS, FULL_DAYS, progress=True, budget_s=FULL_BUDGET_S)]


def month(target: Target, customers: int, days: int, *, progress: bool = False,
          budget_s: float | None = None) -> Figure:
    with target.database() as url, tempfile.TemporaryDirectory(prefix="storeflow-month-mail-") as mail:
        mailbox = Mailbox(Path(mail))
        mailbox.start()
        try:
            spec = MonthSpec(url=url, smtp_port=mailbox.port, customers=customers,
                             products=products_for(customers), days=days, start=START, progress=progress,
                             budget_s=budget_s)
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                result = pool.submit(simulate_month, spec).result()
            received = mailbox.count
        finally:
            mailbox.stop()
    return _figure(target.name, customers, days, result, received)


def _figure(backend: str, customers: int, days: int, r: dict[str, Any], received: int) -> Figure:
    if r["sim_events"] <= 0 or r["steps"] <= 0:
        raise BenchmarkError(f"month: {r['sim_events']} events, {r['steps']} steps: the flows did nothing")
    messages: dict[str, int] = r["messages"]
    sent = sum(n for key, n in messages.items() if key.endswith(("/sent", "/delivered")))
    wall, run_s = r["wall_s"], r["run_s"]
    done = int(r["days_done"]) or days
    whole_month_s = r["import_s"] + r["build_s"] + run_s * days / done  # the days not simulated, at the same pace
    details = {
        "days_done": done, "month_wall_s_extrapolated": round(whole_month_s, 1) if done < days else None,
        "customers": customers, "days": days, "flows": r["flows"], "products": products_for(customers),
        "wall_s": round(wall, 1), "cpu_seconds": round(r["cpu_s"], 1), "month_s": round(run_s, 1),
        "imported_customers": r["imported"], "import_s": round(r["import_s"], 1),
        "build_s": round(r["build_s"], 1), "setup_s": round(r["setup_s"], 1),
        "sim_events": r["sim_events"], "events_stored": r["events_stored"],
        "events_per_second": round(r["sim_events"] / run_s, 1),
        "steps": r["steps"], "steps_logged": r["steps_logged"], "steps_per_second": round(r["steps"] / run_s, 1),
        "messages_sent": sent, "messages": messages, "mailbox_received": received,
        "peak_rss_mb": r["peak_rss_mb"], "rss_after_people_mb": r["rss_after_people_mb"],
        "time_split_s": r["time_split_s"], "runs": r["runs"], "profiles": r["profiles"], "sim": r["sim"],
        "events_by_type": r["events_by_type"], "calls": r["calls"],
        "target_met": {"month_under_10_min": done == days and wall < TARGET_SECONDS,
                       "rss_under_1_gb": r["peak_rss_mb"] < TARGET_RSS_MB},
    }
    split = r["time_split_s"]
    top = sorted(split.items(), key=lambda kv: -kv[1])[:3]
    span = f"{days} d" if done == days else f"{done} of {days} d (month ~{whole_month_s / 60:,.0f} min at this pace)"
    note = (f"{customers:,} customers, {span}, 47 flows: {r['steps']:,} steps ({details['steps_per_second']:,}/s), "
            f"{sent:,} messages, peak RSS {r['peak_rss_mb']:,.0f} MB; most time: "
            + ", ".join(f"{k} {v:,.0f}s" for k, v in top) + f" (target: {TARGET_SECONDS:.0f}s, 1 GB)")
    return Figure(backend, "month", int(r["sim_events"]), "events", run_s, details, note)


def main(argv: list[str] | None = None) -> int:
    """Development runs at other sizes: prints the figure as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.month")
    parser.add_argument("--customers", type=int, default=18_000)
    parser.add_argument("--days", type=int, default=FULL_DAYS)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args(argv)
    if args.backend == "sqlite":
        target: Target = SqliteTarget()
    else:
        target = PostgresTarget(args.postgres_url or os.environ.get("STOREFLOW_BENCH_POSTGRES_URL")
                                or os.environ.get("STOREFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    figure = month(target, args.customers, args.days, progress=True)
    print(json.dumps(figure.as_json(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

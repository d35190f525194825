"""Bulk import: ``storeflow events import history.jsonl`` as a store moving in would run it.

The file is six months of the store's commerce history (views, add-to-carts, checkouts, orders),
oldest first, written as JSONL. The 47 flows are live while it imports, as they would be: the
events are older than every flow's ``max_age``, so (as designed) the import starts no runs, but each
event is still validated, deduplicated, resolved to a profile and applied to the store's state.

The figure is the whole command's wall time (process start, migrations check and all), read by a
separate ``storeflow`` process. The floor is the same rows inserted raw (see ``ingest floor``).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import START, BenchmarkError, Figure, open_storeflow
from benchmarks.flows47 import apply_all
from benchmarks.ingest import ingest_floor
from benchmarks.server import storeflow_cli
from benchmarks.targets import Target
from benchmarks.workload import commerce_events
from storeflow.clock import SystemClock

QUICK_EVENTS, FULL_EVENTS = 500, 100_000
HISTORY = timedelta(days=180)


def run(target: Target, quick: bool) -> list[Figure]:
    count = QUICK_EVENTS if quick else FULL_EVENTS
    history = history_events(count)
    imported = bulk_import(target, history)
    floor = ingest_floor(target, history, scenario="import floor")
    imported.details["floor_ratio"] = round(floor.rate / imported.rate, 1) if imported.rate else None
    imported.note += f"; floor {imported.details['floor_ratio']:g}x faster"
    return [imported, floor]


def history_events(count: int) -> list[dict[str, Any]]:
    """``count`` commerce events spread evenly over the half year before START, oldest first."""
    events = commerce_events(count, profiles=max(count // 8, 10), now=START, seed=23)
    step = HISTORY / count
    for n, event in enumerate(events):
        event["occurred_at"] = (START - HISTORY + step * n).isoformat()
    return events


def bulk_import(target: Target, events: list[dict[str, Any]]) -> Figure:
    with target.database() as url, tempfile.TemporaryDirectory(prefix="storeflow-import-") as tmp:
        sf = open_storeflow(url, SystemClock())
        try:
            flows = apply_all(sf)
        finally:
            sf.close()
        path = Path(tmp) / "history.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for event in events:
                handle.write(json.dumps(event) + "\n")
        size_mb = path.stat().st_size / 1e6
        cmd = [*storeflow_cli(), "--database-url", url, "events", "import", str(path), "--json"]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchmarkError(f"storeflow events import exited {done.returncode}: {done.stderr[-800:]}")
        summary = json.loads(done.stdout)
        sf = open_storeflow(url, SystemClock())
        try:
            with sf.store.transaction() as tx:
                stored = tx.count_events()
                runs = sum(tx.run_counts().values())
        finally:
            sf.close()
    if summary.get("accepted") != len(events) or stored < len(events):
        raise BenchmarkError(f"import: {summary} ({stored} events stored) for {len(events)} lines")
    return Figure(target.name, "import", len(events), "events", seconds, {
        "file_mb": round(size_mb, 1), "live_flows": flows, "runs_started": runs, "events_stored": stored,
        "summary": {k: v for k, v in summary.items() if k != "errors"},
        "how": "storeflow events import FILE.jsonl --json, a separate process; wall time of the whole command",
    }, note=f"JSONL {size_mb:.1f} MB, half a year of history, {flows} live flows, whole command")

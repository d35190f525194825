"""Event to first step is real time: the worker is woken, not left to its polling interval.

Each test sets the polling fallback far above the bound it checks, so passing proves the wake-up
(in process: ingest sets the worker's event; across processes on PostgreSQL: LISTEN/NOTIFY).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from helpers import apply

from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings

FLOW = "id: rt\nname: RT\ntrigger: {event: checkout_started}\nsteps:\n  - action: tag\n    tags: [seen]\n"
BOUND_S = 2.5


def _first_step_done(sf: Storeflow, run_id: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if sf.views.run(run_id)["status"] == "completed":
            return True
        time.sleep(0.02)
    return False


def _checkout(n: int) -> dict[str, object]:
    return {"type": "checkout_started", "email": f"rt{n}@example.com", "id": f"rt-{n}",
            "properties": {"checkout_id": f"rt-{n}"}}


def test_in_process_worker_wakes_on_ingest(db_url: str) -> None:
    sf = Storeflow(Settings(database_url=db_url, worker_poll_interval_s=60), clock=SystemClock())
    stop = threading.Event()
    worker = threading.Thread(target=sf.serve_worker, args=(stop,))
    try:
        apply(sf, FLOW)
        worker.start()
        time.sleep(0.3)  # let the worker go idle
        for n in range(3):
            run_id = sf.ingest([_checkout(n)])[0].runs_started[0]
            assert _first_step_done(sf, run_id, time.monotonic() + BOUND_S), f"run {n} not started in time"
    finally:
        stop.set()
        sf.wake()
        worker.join(10)
        sf.close()
    assert not worker.is_alive()


def test_worker_in_another_process_wakes_on_notify(pg_url: str, tmp_path: Path) -> None:
    child = textwrap.dedent(f"""
        import signal, threading
        from storeflow.app import Storeflow
        from storeflow.clock import SystemClock
        from storeflow.settings import Settings
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: (stop.set(), sf.wake()))
        sf = Storeflow(Settings(database_url={pg_url!r}, worker_poll_interval_s=60), clock=SystemClock())
        print("ready", flush=True)
        sf.serve_worker(stop)
        sf.close()
    """)
    sf = Storeflow(Settings(database_url=pg_url), clock=SystemClock())
    apply(sf, FLOW)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # the child is idle, listening
        for n in range(3):
            run_id = sf.ingest([_checkout(n)])[0].runs_started[0]
            assert _first_step_done(sf, run_id, time.monotonic() + BOUND_S), f"run {n} not started in time"
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout:
            proc.stdout.close()
        sf.close()
    assert proc.returncode == 0

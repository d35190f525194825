"""Membership is real time on the system clock: an event's segment_entered is stored soon after it
(the worker is woken by ingest: in process, or across processes by NOTIFY on PostgreSQL), and a
time-relative exit happens at its flip (the worker sleeps until the next due row), never waiting for
the polling interval, which each test sets far above the bound it checks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta

from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.segments import load_segment
from storeflow.settings import Settings

BOUND_S = 2.5
ACTIVE = {"id": "active", "name": "Active in the last 3 seconds",
          "condition": {"field": "profile.last_active_at", "within": "3s"}}


def _stay(sf: Storeflow, email: str) -> dict[str, object] | None:
    pid = sf.views.find_profile("email", email)
    if pid is None:
        return None
    with sf.store.read() as tx:
        stays = tx.membership_history(str(pid))
    return stays[-1] if stays else None


def _wait(check: object, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _computed(sf: Storeflow) -> bool:
    with sf.store.read() as tx:
        return any(s["id"] == "active" and s["computed_version"] == 1 for s in tx.segment_states())


def _check_entry_and_timed_exit(sf: Storeflow) -> None:
    for n in range(2):
        email = f"rt{n}@example.com"
        sent = time.monotonic()
        assert sf.ingest([{"type": "product_viewed", "email": email, "properties": {"product_id": "p1"}}])[0] \
            .status == "accepted"
        assert _wait(lambda e=email: _stay(sf, e) is not None, sent + BOUND_S), f"{email} did not enter in time"
        stay = _stay(sf, email)
        assert stay is not None and stay["entered_by"] == "event"
        assert _wait(lambda e=email: (_stay(sf, e) or {}).get("exited_at") is not None, sent + 3 + BOUND_S), \
            f"{email} did not leave in time"
        stay = _stay(sf, email)
        assert stay is not None and stay["exited_by"] == "time"
        entered, exited = stay["entered_at"], stay["exited_at"]
        assert isinstance(entered, datetime) and isinstance(exited, datetime)
        # the flip is at last_active_at + 3 s + 1 µs: not before, and not the polling interval later
        assert timedelta(seconds=3 - BOUND_S) < exited - entered < timedelta(seconds=3 + BOUND_S)


def test_in_process_worker_keeps_membership_current(db_url: str) -> None:
    sf = Storeflow(Settings(database_url=db_url, worker_poll_interval_s=60), clock=SystemClock())
    stop = threading.Event()
    worker = threading.Thread(target=sf.serve_worker, args=(stop,))
    try:
        worker.start()
        sf.segments.apply(load_segment(ACTIVE))  # wakes the worker: computed at once, not at the poll
        assert _wait(lambda: _computed(sf), time.monotonic() + BOUND_S)
        _check_entry_and_timed_exit(sf)
    finally:
        stop.set()
        sf.wake()
        worker.join(10)
        sf.close()
    assert not worker.is_alive()


def test_worker_in_another_process_keeps_membership_current(pg_url: str) -> None:
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
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # applied while the child runs: NOTIFY wakes it (or its first round sees it), not the 60 s poll
        sf.segments.apply(load_segment(ACTIVE))
        assert _wait(lambda: _computed(sf), time.monotonic() + 10)
        time.sleep(0.5)  # the child is idle, listening
        _check_entry_and_timed_exit(sf)
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout:
            proc.stdout.close()
        sf.close()
    assert proc.returncode == 0

"""Event to first step: how long a ``checkout_started`` waits before its run's first step starts,
while the API takes the load of the ingest scenario.

Set-up as in production: the 47 live flows; a real SMTP server (in its own process) so the flows'
emails go somewhere; an API process (``serve --api-only``) and a worker process (``serve
--worker-only``). On PostgreSQL the worker wakes on LISTEN/NOTIFY; on SQLite, which has no
notifications between processes, it polls every 50 ms (``STOREFLOW_WORKER_POLL_INTERVAL_S``).

One client thread POSTs the ingest load (commerce events in batches); meanwhile probes, each a
``checkout_started`` for a new shopper sent alone to ``POST /v1/events``, go out every 100 ms. A
probe's latency is the time the worker logged the first step of a run it started, minus the time
the client sent it (same machine, same clock). Only probes sent while the load ran count.

Two loads: ``latency`` takes scenario 1's load, batches of 1,000 as fast as the API takes them
(every event starts about one run, so the worker falls behind and the probes queue behind that
backlog); ``latency paced`` sends the same events at a steady rate the worker keeps up with.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from benchmarks.common import BenchmarkError, Figure, open_storeflow
from benchmarks.email import SmtpSink
from benchmarks.ingest import FULL, QUICK, Sizes
from benchmarks.server import bench_store, serve, stop, storeflow_cli
from benchmarks.targets import Target
from benchmarks.workload import commerce_events
from storeflow.clock import SystemClock
from storeflow.store.tables import run_steps

PROBE_EVERY_S = 0.1
PACED = Sizes(events=12_000, batch=100, profiles=5_000)  # at PACED_RATE: about a minute
PACED_RATE = 200.0  # events/s
QUICK_PACED_RATE = 100.0


def run(target: Target, quick: bool) -> list[Figure]:
    return [latency(target, QUICK if quick else FULL, None),
            latency(target, QUICK if quick else PACED, QUICK_PACED_RATE if quick else PACED_RATE)]


@contextmanager
def worker_process(url: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``storeflow serve --worker-only``; yields once it says it runs (imports and start-up done)."""
    drains: list[threading.Thread] = []
    proc = subprocess.Popen([*storeflow_cli(), "--database-url", url, "serve", "--worker-only"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        assert proc.stdout is not None
        seen = []
        for raw in proc.stdout:
            seen.append(raw.decode(errors="replace"))
            if b"worker running" in raw:
                break
        else:
            raise BenchmarkError("storeflow serve --worker-only did not start:\n" + "".join(seen[-20:]))
        drains.append(threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True))
        drains[0].start()
        yield proc
    finally:
        stop(proc, drains)


def _probe(n: int) -> dict[str, Any]:
    checkout = f"probe-checkout-{n}"
    return {"type": "checkout_started", "id": f"probe-{n}", "email": f"probe{n}@example.com",
            "occurred_at": datetime.now(UTC).isoformat(),
            "properties": {"checkout_id": checkout, "currency": "USD", "value": "120.00",
                           "items": [{"product_id": "p1", "variant_id": "v1", "title": "Product 1",
                                      "quantity": 1, "price": "120.00"}],
                           "checkout_url": f"https://shop.example.com/checkouts/{checkout}"}}


def latency(target: Target, sizes: Sizes, rate: float | None) -> Figure:
    """Probes under a load of ``sizes``: as fast as the API takes it (``rate`` None), or paced."""
    with target.database() as url:
        flows, key = bench_store(url)
        load = commerce_events(sizes.events, profiles=sizes.profiles, now=datetime.now(UTC))
        bodies = [json.dumps({"events": load[i:i + sizes.batch]}).encode()
                  for i in range(0, len(load), sizes.batch)]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        probes: list[tuple[float, list[str]]] = []  # (sent at, epoch seconds; runs it started)
        answered: list[float] = []  # seconds until the API answered each probe
        with SmtpSink() as smtp:
            env = {"STOREFLOW_SMTP_HOST": "127.0.0.1", "STOREFLOW_SMTP_PORT": str(smtp.port),
                   "STOREFLOW_WORKER_POLL_INTERVAL_S": "0.05"}
            with serve(url, "--api-only", env=env) as server, worker_process(url, env):
                done = threading.Event()
                failure: list[str] = []

                def push_load() -> None:
                    try:
                        with httpx.Client(base_url=server.base_url, headers=headers, timeout=300.0) as client:
                            begun = time.perf_counter()
                            for n, body in enumerate(bodies):
                                if rate is not None:  # hold the rate: batch n goes out at n * batch / rate
                                    time.sleep(max(0.0, n * sizes.batch / rate - (time.perf_counter() - begun)))
                                response = client.post("/v1/events/batch", content=body)
                                if response.status_code != 200:
                                    failure.append(f"{response.status_code} {response.text[:200]}")
                                    return
                    finally:
                        done.set()

                loader = threading.Thread(target=push_load, name="bench-load")
                with httpx.Client(base_url=server.base_url, headers=headers, timeout=60.0) as client:
                    started = time.perf_counter()
                    loader.start()
                    n = 0
                    while not done.is_set():
                        sent = time.time()
                        response = client.post("/v1/events", json=_probe(n))
                        if response.status_code != 202:
                            raise BenchmarkError(f"probe: {response.status_code} {response.text[:300]}")
                        if not done.is_set():
                            probes.append((sent, response.json()["runs_started"]))
                            answered.append(time.time() - sent)
                        n += 1
                        done.wait(max(0.0, PROBE_EVERY_S - (time.time() - sent)))
                    load_seconds = time.perf_counter() - started
                    loader.join()
                if failure:
                    raise BenchmarkError(f"the load's POST failed: {failure[0]}; the server said:\n"
                                         + "".join(line for line in server.output[-40:] if "INFO" not in line))
                firsts = _wait_first_steps(url, probes)
    lat = sorted(max(0.0, firsts[i] - sent) * 1000 for i, (sent, _) in enumerate(probes))
    if not lat:
        raise BenchmarkError("no probe ran during the load; the load finished too soon")
    p50, p99 = _pct(lat, 50), _pct(lat, 99)
    api = sorted(a * 1000 for a in answered)
    topology = "API and worker processes, " + ("NOTIFY" if target.name == "postgres" else "worker polls every 50 ms")
    return Figure(target.name, "latency" if rate is None else "latency paced", len(lat), "probes", load_seconds, {
        "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "max_ms": round(lat[-1], 1),
        "api_answer_p50_ms": round(_pct(api, 50), 1), "api_answer_p99_ms": round(_pct(api, 99), 1),
        "load_events": sizes.events, "load_events_per_second": round(sizes.events / load_seconds, 1),
        "live_flows": flows, "topology": topology, "probe_every_s": PROBE_EVERY_S, "paced_rate": rate,
    }, note=(f"checkout_started -> first step: p50 {p50:,.0f} ms, p99 {p99:,.0f} ms, max {lat[-1]:,.0f} ms "
             f"under {sizes.events / load_seconds:,.0f} events/s of load; {topology}"))


def _wait_first_steps(url: str, probes: list[tuple[float, list[str]]], timeout: float = 600.0) -> list[float]:
    """For each probe, the epoch time of the first step logged for any run it started."""
    runs = [r for _, started in probes for r in started]
    if any(not started for _, started in probes):
        raise BenchmarkError("a probe started no run; the 47 flows should start several on checkout_started")
    sf = open_storeflow(url, SystemClock())
    try:
        deadline = time.monotonic() + timeout
        while True:
            with sf.store.transaction() as tx:
                rows = tx.conn.execute(
                    select(run_steps.c.run_id, func.min(run_steps.c.at)).where(run_steps.c.run_id.in_(runs))
                    .group_by(run_steps.c.run_id)).all()
            first = {r[0]: r[1] for r in rows}
            if all(any(r in first for r in started) for _, started in probes):
                break
            if time.monotonic() > deadline:
                raise BenchmarkError(f"after {timeout:.0f} s only {len(first)} of {len(runs)} probe runs had a step")
            time.sleep(0.5)
    finally:
        sf.close()
    out = []
    for _, started in probes:
        times = [_epoch(first[r]) for r in started if r in first]
        out.append(min(times))
    return out


def _epoch(at: Any) -> float:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return float(at.timestamp())


def _pct(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]

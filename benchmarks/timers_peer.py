"""The timers load through procrastinate (an established PostgreSQL job queue): the same number of
jobs scheduled (``schedule_at``), the same due window and rate, the rest days away, deferred with its
batch API (``JobManager.batch_defer_jobs``) into a schema of its own on the same server, and run by a
real procrastinate worker in its own process, with a task that records how late it started.

Procrastinate fetches the todo job with the lowest id whose time has come (``ORDER BY priority,
id``; nothing indexes ``scheduled_at``), so the order jobs are deferred in matters to it: the due
jobs are deferred first, as they would be in a store whose timers all wait 30 days (a job due sooner
was deferred sooner). Their times are set afterwards by one UPDATE, once the worker has started, so
the window opens ``lead`` seconds after the seeding ends, as for storeflow; VACUUM ANALYZE before and
after it leaves the table as a long-running, autovacuumed queue would be (no dead row versions).

Worker settings: ``concurrency`` 10 (the task is async and does nothing but record), and a polling
interval of 0.25 s (storeflow's own; procrastinate's default 5 s would make every idle wait up to
5 s late: LISTEN/NOTIFY only tells it of new jobs, not of scheduled ones coming due).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks.common import BenchmarkError
from benchmarks.timers import CHUNK, Load, far_dues, lateness_summary, peak_rss_mb, rss_mb, watch

QUEUE = "timers"
TASK = "timer_fired"
CONCURRENCY = 10
POLL_S = 0.25


def _conninfo(url: str) -> tuple[str, dict[str, Any]]:
    """libpq connection string and extra connect kwargs (the schema's search_path) from a SQLAlchemy URL."""
    parsed = make_url(url)
    options = parsed.query.get("options")
    base = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return base, ({"options": options} if isinstance(options, str) else {})


def _app(url: str) -> Any:
    import procrastinate

    conninfo, kwargs = _conninfo(url)
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo, kwargs=kwargs))


def _vacuum(url: str) -> None:
    import psycopg

    conninfo, kwargs = _conninfo(url)
    with psycopg.connect(conninfo, autocommit=True, **kwargs) as conn:
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def _worker(url: str, conn: Connection, stop: MpEvent, fired: Synchronized[int]) -> None:
    """A procrastinate worker whose task records how late each job started."""
    from procrastinate import JobContext

    app = _app(url)
    late: list[float] = []
    started: list[float] = []

    async def timer_fired(context: JobContext) -> None:
        now = time.time()
        job = context.job
        assert job.scheduled_at is not None
        late.append(now - job.scheduled_at.timestamp())
        started.append(now)
        with fired.get_lock():
            fired.value += 1

    app.task(name=TASK, queue=QUEUE, pass_context=True)(timer_fired)

    async def main() -> None:
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], concurrency=CONCURRENCY, fetch_job_polling_interval=POLL_S,
                install_signal_handlers=False, wait=True))
            conn.send({"rss_ready_mb": rss_mb()})
            await asyncio.to_thread(stop.wait)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    cpu = time.process_time()
    asyncio.run(main())
    conn.send({"late": late, "started": started, "cpu_seconds": round(time.process_time() - cpu, 3),
               "rss_end_mb": rss_mb(), "peak_rss_mb": peak_rss_mb()})


def procrastinate_timers(url: str, load: Load) -> dict[str, Any]:
    from procrastinate.jobs import Job

    app = _app(url)
    app.open()
    try:
        app.schema_manager.apply_schema()
        manager = app.job_manager

        def defer(times: list[datetime]) -> list[int]:
            ids: list[int] = []
            for i in range(0, len(times), CHUNK):
                jobs = [Job(id=None, queue=QUEUE, lock=None, queueing_lock=None, task_name=TASK,
                            task_kwargs={}, scheduled_at=t) for t in times[i:i + CHUNK]]
                ids += [int(j.id) for j in manager.batch_defer_jobs(jobs) if j.id is not None]
            return ids

        started = time.perf_counter()
        # due jobs first (lowest ids), at placeholder times 40 days away; then the far ones
        placeholder = datetime.now(UTC) + timedelta(days=40)
        due_ids = defer([placeholder + timedelta(seconds=i / load.rate) for i in range(load.due)])
        due_seconds = time.perf_counter() - started
        defer(list(far_dues(load.waiting - load.due, datetime.now(UTC))))
        seed_seconds = time.perf_counter() - started

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        stop = ctx.Event()
        fired = ctx.Value("q", 0)
        proc = ctx.Process(target=_worker, args=(url, child, stop, fired), daemon=True)
        proc.start()
        try:
            ready = parent.recv()
            sync = app.connector.get_sync_connector()
            vacuum_started = time.perf_counter()
            _vacuum(url)
            vacuum = time.perf_counter() - vacuum_started
            first = datetime.now(UTC) + timedelta(seconds=1.5 * (due_seconds + vacuum) + load.lead)
            shift_started = time.perf_counter()
            sync.execute_query(
                "UPDATE procrastinate_jobs SET scheduled_at = scheduled_at - %(shift)s "
                "WHERE id BETWEEN %(lo)s AND %(hi)s",
                shift=placeholder - first, lo=min(due_ids), hi=max(due_ids))
            _vacuum(url)  # no dead row versions left by the UPDATE
            seed_seconds += time.perf_counter() - shift_started + vacuum
            headroom = (first - datetime.now(UTC)).total_seconds()
            samples = watch(proc, lambda: fired.value >= load.due, first.timestamp() + load.window + load.drain_cap)
            stopped_at = time.time()
            stop.set()
            result = parent.recv() if parent.poll(60) else {}
            proc.join(30)
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join()
            parent.close()
            child.close()
        left = sync.execute_query_one("SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'todo'")
    finally:
        app.close()
    if not result:
        raise BenchmarkError("timers: the procrastinate worker did not report")
    late: list[float] = result["late"]
    fired_at: list[float] = result["started"]
    first_due = first.timestamp()
    # the jobs not run: scheduled first..first+window, evenly; the first len(late) ran (in id order, roughly)
    unfired = [stopped_at - (first_due + i / load.rate) for i in range(len(late), load.due)]
    if int(left["n"]) != load.waiting - len(late):
        raise BenchmarkError(f"timers: {left['n']} procrastinate jobs left to do after {len(late)} of "
                             f"{load.waiting} ran")
    out = lateness_summary(late, unfired, fired_at, first_due, load)
    span = (max(fired_at) - min(fired_at)) if len(fired_at) > 1 else 0.0
    out.update({
        "waiting": load.waiting, "concurrency": CONCURRENCY, "polling_interval_s": POLL_S,
        "capacity_per_second": round(len(fired_at) / span, 1) if span else None,
        "worker_cpu_seconds": result["cpu_seconds"], "worker_rss_ready_mb": ready["rss_ready_mb"],
        "worker_rss_end_mb": result["rss_end_mb"], "worker_peak_rss_mb": result["peak_rss_mb"],
        "worker_rss_sampled_max_mb": max(samples) if samples else None,
        "seed_seconds": round(seed_seconds, 3), "seed_rows_per_second": round(load.waiting / seed_seconds, 1),
        "seed_headroom_s": round(headroom, 3), "worker_stopped_after_s": round(stopped_at - first_due, 3),
    })
    return out

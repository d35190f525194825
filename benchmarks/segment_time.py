"""Time-relative exits: a segment "ordered within 30 days" with a million members, whose exits come
due on the clock with nothing else happening.

Seeding: N profiles, each with one order (``profiles.last_order_at`` and an ``orders`` row, written
by set-based SQL). At the instant ``T0`` every one ordered within the last 30 days; ``rate`` of them
per second leave during a window of ``window`` seconds starting ``lead`` seconds after ``T0`` (their
orders were placed 30 days before), the rest over the following 30 days. The segment is computed in
full once at ``T0`` (on a ``VirtualClock`` in this process: ``segment_time compute``), which stores
every member and its due flip.

Then a real worker (``Storeflow.serve_worker``, as ``storeflow serve --worker-only`` runs it) in its
own process runs on the system clock shifted so that ``T0`` is the moment it is told to go (a pure
offset: seconds pass at the real rate). Lateness is each exit's ``exited_at`` in the membership log
minus the instant its order left the 30-day window; exits not made when the worker is stopped count
with the time they had waited (a lower bound, shown as ≥). Memory: the worker's RSS sampled every
0.25 s, and its peak, with N members and (full size) with a tenth as many.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from sqlalchemy import Engine, func, select, text

from benchmarks.common import BenchmarkError, Figure, open_storeflow
from benchmarks.segment_data import Dialect, profile_id
from benchmarks.targets import Target
from benchmarks.timers import peak_rss_mb, rss_mb, watch
from storeflow.clock import SystemClock, VirtualClock
from storeflow.settings import Settings
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import events, segment_due, segment_members, segment_membership_log

SEGMENT = {"id": "ordered-30d", "name": "Ordered in the last 30 days",
           "condition": {"orders": {"within": "30d"}, "exists": True}}
WITHIN = timedelta(days=30)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Load:
    members: int
    rate: int  # exits due per second in the window
    window: float  # seconds
    lead: float  # seconds from go to the window's first exit
    drain_cap: float  # give up this long after the window closes

    @property
    def due(self) -> int:
        return int(self.rate * self.window)


QUICK = Load(members=1_000, rate=200, window=1.5, lead=1.0, drain_cap=20.0)
FULL = Load(members=1_000_000, rate=500, window=20.0, lead=3.0, drain_cap=60.0)
FULL_SMALL = 100_000
ENGINE_COMPUTE_MAX = 50_000
"""Above this many members the membership and due rows are written by SQL (``seed_members``, as the
engine writes them; the quick run checks the formula against the engine's own rows) and the engine's
full computation is timed on ``COMPUTE_SAMPLE`` members instead."""
COMPUTE_SAMPLE = 20_000


def run(target: Target, quick: bool) -> list[Figure]:
    load = QUICK if quick else FULL
    small: dict[str, Any] | None = None
    if not quick:
        with target.database() as url:
            small = exits(url, Load(FULL_SMALL, load.rate, load.window, load.lead, load.drain_cap))
    with target.database() as url:
        main = exits(url, load)
    if small is not None:
        main["with_100k_members"] = {k: small[k] for k in (
            "late_p50_s", "late_p99_s", "late_max_s", "worker_peak_rss_mb", "worker_rss_sampled_max_mb")}
    bound = "≥" if main["unexited"] else ""
    rss = f"worker RSS {main['worker_rss_ready_mb']} -> max {main['worker_rss_sampled_max_mb']} MB"
    if small is not None:
        rss += f" ({small['worker_rss_sampled_max_mb']} MB with {FULL_SMALL:,} members)"
    note = (f"{load.members:,} members, {load.rate:,}/s due for {load.window:g}s: "
            f"late p50 {bound}{main['late_p50_s']}s p99 {bound}{main['late_p99_s']}s "
            f"max {bound}{main['late_max_s']}s (target p99 ≤ 1s); {rss}")
    if main["unexited"]:
        note += f"; {main['unexited']:,} not exited after {load.drain_cap:g}s"
    if main["members_by"] == "engine":
        computed = {"members": load.members, "seconds": main["compute_seconds"]}
    else:  # the engine's full computation timed on a sample, the members seeded as it writes them
        with target.database() as url:
            computed = compute_sample(url, Load(COMPUTE_SAMPLE, load.rate, load.window, load.lead, load.drain_cap))
    per_second = computed["members"] / computed["seconds"] if computed["seconds"] else 0.0
    compute_note = (f"full computation of '{SEGMENT['id']}' by the engine: {computed['members']:,} members and "
                    f"their due flips in {computed['seconds']:.1f} s ({per_second:,.0f} members/s)")
    if computed["members"] != load.members:
        compute_note += (f"; {load.members:,} would take ~{load.members / per_second / 60:,.0f} min, so the exits "
                         "above ran on membership and due rows written by SQL as the engine writes them")
    compute = Figure(target.name, "segment_time compute", computed["members"], "members", computed["seconds"],
                     {**computed, "members_per_second": round(per_second, 1), "exits_members_by": main["members_by"]},
                     note=compute_note)
    return [Figure(target.name, "segment_time", main["exited"], "exits", main["exit_seconds"], main, note), compute]


# -- seeding ---------------------------------------------------------------------------------------

def seed(engine: Engine, load: Load) -> None:
    """N profiles with one live order each; order i is placed 30 days before its exit instant."""
    d = Dialect(engine.dialect.name)
    t0 = T0.timestamp()
    first = t0 + load.lead
    later_span = WITHIN.total_seconds() - load.lead - load.window - 60
    rest = max(load.members - load.due, 1)
    # exit instant of profile i (1-based), seconds: the window's, then spread over the month
    exit_s = (f"(CASE WHEN i <= {load.due} THEN {first} + (i - 1) * 1.0 / {load.rate} "
              f"ELSE {first + load.window + 60} + (i - {load.due}) * {later_span} / {rest} END)")
    placed = f"({exit_s} - {WITHIN.total_seconds()})"
    if d.pg:
        ts = f"to_timestamp({placed})"
        numbers = f"generate_series(1, {load.members}) AS s(i)"
        head = ""
    else:
        ts = f"(strftime('%Y-%m-%d %H:%M:%f', {placed}, 'unixepoch') || '000')"
        numbers = "c"
        head = f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {load.members}) "
    created = d.ts(str(int(t0) - 90 * 86_400))
    now = d.ts(str(int(t0)))
    pid = d.hex_id("prof_", "i")
    spent = d.json("'{\"IDR\":\"250000.00\"}'")
    empty_map, empty_list = d.json("'{}'"), d.json("'[]'")
    with engine.begin() as conn:
        conn.execute(text(
            f"{head}INSERT INTO profiles (id, email, locale, timezone, properties, tags, consent_email, consent_sms,"
            f" consent_push, orders_count, total_spent, first_order_at, last_order_at, last_active_at, created_at,"
            f" updated_at) SELECT {pid}, 'c' || i || '@bench.example', 'id_ID', 'Asia/Jakarta', {empty_map},"
            f" {empty_list}, 'subscribed', 'never_asked', 'never_asked', 1, {spent}, {ts}, {ts}, {ts}, {created},"
            f" {now} FROM {numbers}"))
        conn.execute(text(
            f"{head}INSERT INTO orders (id, profile_id, number, status, financial_status, fulfillment_status,"
            f" currency, total_minor, refunded_minor, tags, shipping_country, line_items, properties, placed_at,"
            f" updated_at) SELECT 'o-time-' || i, {pid}, '#' || i, 'open', 'paid', 'fulfilled', 'IDR', 25000000, 0,"
            f" {empty_list}, 'ID', {empty_list}, {empty_map}, {ts}, {ts} FROM {numbers}"))
    if d.pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE profiles"))
            conn.execute(text("VACUUM ANALYZE orders"))


def _due_sql(d: Dialect) -> str:
    """The instant an order leaves the 30-day window, as the engine stores it: 30 days and 1 µs later."""
    if d.pg:
        return "(o.placed_at + interval '30 days 0.000001 seconds')"
    return "(strftime('%Y-%m-%d %H:%M:%f', o.placed_at, '+30 days') || '001')"


def seed_members(engine: Engine, members: int) -> int:
    """What the engine's full computation of SEGMENT at T0 writes, by set-based SQL: every profile a
    member since T0 (its stay logged, by "compute"), its due flip, the segment marked computed."""
    d = Dialect(engine.dialect.name)
    t0 = d.ts(str(int(T0.timestamp())))
    sid = SEGMENT["id"]
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO segment_members (segment_id, profile_id, entered_at) "
                          f"SELECT '{sid}', id, {t0} FROM profiles ORDER BY id"))
        conn.execute(text(f"INSERT INTO segment_membership_log (segment_id, profile_id, entered_at, entered_by) "
                          f"SELECT '{sid}', id, {t0}, 'compute' FROM profiles ORDER BY id"))
        conn.execute(text(f"INSERT INTO segment_due (segment_id, profile_id, due_at) "
                          f"SELECT '{sid}', o.profile_id, {_due_sql(d)} FROM orders o ORDER BY o.profile_id"))
        conn.execute(text(f"UPDATE segments SET computed_version = current_version, computed_at = {t0}, "
                          f"member_count = {members} WHERE id = '{sid}'"))
    if d.pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("segment_members", "segment_membership_log", "segment_due"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    return members


def check_due_formula(engine: Engine) -> int:
    """How many of the engine's due rows differ from ``seed_members``' formula (0: it writes the same)."""
    d = Dialect(engine.dialect.name)
    with engine.connect() as conn:
        return int(conn.execute(text(
            f"SELECT count(*) FROM orders o LEFT JOIN segment_due sd ON sd.profile_id = o.profile_id "
            f"WHERE sd.due_at IS NULL OR sd.due_at <> {_due_sql(d)}")).scalar_one())


def compute_sample(url: str, load: Load) -> dict[str, Any]:
    """The engine's full computation of SEGMENT over ``load.members`` profiles, timed."""
    sf = open_storeflow(url, VirtualClock(T0))
    try:
        engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
        seed(engine, load)
        sf.segments.apply(sf.segments.load(SEGMENT, source="segment_time"))
        started = time.perf_counter()
        sf.membership.tick()
        seconds = time.perf_counter() - started
        with sf.store.read() as tx:
            members = sql_connection(tx).execute(select(func.count()).select_from(segment_members)).scalar_one()
    finally:
        sf.close()
    if members != load.members:
        raise BenchmarkError(f"segment_time: the engine computed {members} members, not {load.members}")
    return {"members": int(members), "seconds": round(seconds, 3)}


# -- the worker process ----------------------------------------------------------------------------

class OffsetClock(SystemClock):
    """The system clock shifted by a fixed offset: seconds pass at the real rate."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _worker(url: str, conn: Connection, go: MpEvent, stop: MpEvent, t0_real: Synchronized[float]) -> None:
    """``Storeflow.serve_worker`` on the shifted system clock, until told to stop."""
    from storeflow.app import Storeflow

    clock = OffsetClock(timedelta(0))
    sf = Storeflow(Settings(database_url=url), clock=clock)
    sf.warm_up()
    conn.send({"rss_ready_mb": rss_mb()})
    go.wait()
    clock.offset = T0 - datetime.fromtimestamp(t0_real.value, UTC)
    stopping = threading.Event()

    def on_stop() -> None:
        stop.wait()
        stopping.set()
        sf.wake()

    threading.Thread(target=on_stop, daemon=True).start()
    cpu = time.process_time()
    sf.serve_worker(stopping)
    conn.send({"cpu_seconds": round(time.process_time() - cpu, 3), "rss_end_mb": rss_mb(),
               "peak_rss_mb": peak_rss_mb()})
    sf.close()


def exits(url: str, load: Load) -> dict[str, Any]:
    sf = open_storeflow(url, VirtualClock(T0))
    engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    go, stop = ctx.Event(), ctx.Event()
    t0_real = ctx.Value("d", 0.0)
    proc = ctx.Process(target=_worker, args=(url, child, go, stop, t0_real), daemon=True)
    try:
        started = time.perf_counter()
        seed(engine, load)
        seed_seconds = time.perf_counter() - started
        sf.segments.apply(sf.segments.load(SEGMENT, source="segment_time"))
        started = time.perf_counter()
        members_by = "engine" if load.members <= ENGINE_COMPUTE_MAX else "sql"
        if members_by == "engine":
            changes = sf.membership.tick()  # the full computation, at T0
            wrong = check_due_formula(engine)
            if wrong:
                raise BenchmarkError(f"segment_time: {wrong} due rows differ from seed_members' formula")
        else:
            changes = seed_members(engine, load.members)
        compute_seconds = time.perf_counter() - started
        with sf.store.read() as tx:
            members = sql_connection(tx).execute(select(func.count()).select_from(segment_members)).scalar_one()
            due_rows = sql_connection(tx).execute(select(func.count()).select_from(segment_due)).scalar_one()
        if members != load.members:
            raise BenchmarkError(f"segment_time: {members} members after the full computation ({changes} changes), "
                                 f"not {load.members}")
        proc.start()
        ready = parent.recv()
        t0_real.value = time.time()
        go.set()
        first = t0_real.value + load.lead
        exited_count = [0]

        asked = [0.0]

        def done() -> bool:  # the segment_exited events, counted through their (type, time) index, once a second
            if time.monotonic() - asked[0] < 1.0:
                return False
            asked[0] = time.monotonic()
            with sf.store.read() as tx:
                exited_count[0] = sql_connection(tx).execute(
                    select(func.count()).select_from(events).where(events.c.type == "segment_exited")).scalar_one()
            return bool(exited_count[0] >= load.due)

        samples = watch(proc, done, first + load.window + load.drain_cap)
        stopped_at = time.time()
        stop.set()
        result = parent.recv() if parent.poll(60) else {}
        proc.join(30)
        with sf.store.read() as tx:
            rows = sql_connection(tx).execute(
                select(segment_membership_log.c.profile_id, segment_membership_log.c.exited_at)
                .where(segment_membership_log.c.exited_by == "time")).all()
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
        child.close()
        sf.close()
    if not result:
        raise BenchmarkError("segment_time: the worker process did not report")
    offset = T0.timestamp() - t0_real.value  # virtual minus real
    exit_of = {profile_id(i): first + (i - 1) / load.rate for i in range(1, load.due + 1)}  # real seconds
    late: list[float] = []
    exited_at: list[float] = []
    for pid, at in rows:
        due = exit_of.pop(pid, None)
        if due is None:
            raise BenchmarkError(f"segment_time: {pid} exited but was not due")
        real = float(at.timestamp()) - offset
        late.append(real - due)
        exited_at.append(real)
    unexited: list[float] = [stopped_at - due for due in exit_of.values()]
    every = sorted([*late, *unexited])
    if not every:
        raise BenchmarkError("segment_time: no exit came due")

    def pct(p: float) -> float:
        return round(float(every[min(len(every) - 1, int(p * len(every)))]), 4)

    span = max((max(exited_at) if exited_at else first) - first, 1e-6)
    return {
        "members": load.members, "due": load.due, "exited": len(late), "unexited": len(unexited),
        "late_p50_s": pct(0.5), "late_p90_s": pct(0.9), "late_p99_s": pct(0.99), "late_max_s": round(every[-1], 4),
        "exit_seconds": round(span, 3), "exits_per_second": round(len(late) / span, 1),
        "offered_per_second": load.rate, "window_seconds": load.window,
        "seed_seconds": round(seed_seconds, 3), "compute_seconds": round(compute_seconds, 3), "due_rows": due_rows,
        "members_by": members_by,
        "worker_cpu_seconds": result["cpu_seconds"], "worker_rss_ready_mb": ready["rss_ready_mb"],
        "worker_rss_end_mb": result["rss_end_mb"], "worker_peak_rss_mb": result["peak_rss_mb"],
        "worker_rss_sampled_max_mb": max(samples) if samples else None,
        "worker_rss_samples_mb": samples[:: max(1, len(samples) // 40)],
    }

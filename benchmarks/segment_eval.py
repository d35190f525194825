"""Full evaluation of a six-condition segment over a whole store, by the SQL the segment compiler
writes (``storeflow.segments.sql.members_query``).

The segment (``SEGMENT``): a profile property (city), email consent, an event aggregate in a window
(``product_viewed`` at least 3 times within 30 days), an order aggregate (IDR orders within 365 days
summing to at least Rp500.000), a profile field comparison (at least 2 orders) and a time
comparison (signed up more than 30 days ago). The store (``benchmarks/segment_data.py``): 1,000,000
profiles and 20,000,000 events (``--quick``: 2,000 and 40,000), kept between runs in a cache.

Figures, each timed cold (the first execution in a new connection of a new store: an empty SQLite
page cache, a new PostgreSQL backend; the operating system's file cache is whatever the machine
holds) and warm (the median of ``WARM_RUNS`` repeats):

- ``segment_eval count``: ``SELECT count(*)`` over the compiled members query;
- ``segment_eval ids``: the members query itself, every member id fetched into Python;
- ``segment_eval floor``: the same question as one hand-written query (the storage's floor), with
  its member count beside the compiled one's.

The plan (PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``; SQLite: ``EXPLAIN QUERY PLAN``) of the count
is kept in the figure's details. A query still running after ``TIME_CAP_S`` is stopped and reported
as such (a lower bound).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Select, event, func, select, text
from sqlalchemy.exc import OperationalError

from benchmarks.common import BenchmarkError, Figure
from benchmarks.segment_data import NOW, Population, population
from benchmarks.targets import Target
from storeflow.flows.conditions import Condition
from storeflow.store.factory import open_store

SEGMENT = """
id: java-engaged-spenders
name: Engaged big spenders in Java
description: Subscribed, browsing this month, spending in rupiah, signed up over a month ago
condition:
  all:
    - {field: profile.city, in: [Jakarta, Surabaya, Bandung]}
    - {field: profile.consent.email, eq: subscribed}
    - history: {event: product_viewed, within: 30d}
      count: {gte: 3}
    - orders: {within: 365d, where: {field: order.currency, eq: IDR}}
      sum: {of: order.total, gte: 500000}
    - {field: profile.orders_count, gte: 2}
    - {field: profile.created_at, older_than: 30d}
"""
STORE_TZ = ZoneInfo("Asia/Jakarta")
QUICK = Population(profiles=2_000, events=40_000)
FULL = Population(profiles=1_000_000, events=20_000_000)
WARM_RUNS = 3
TIME_CAP_S = 180.0


def segment_condition() -> Condition:
    from storeflow.segments import load_segment

    return load_segment(SEGMENT, source="benchmarks/segment_eval.py").condition


def floor_sql(dialect: str) -> str:
    """The segment as one hand-written query, with the language's documented meaning (docs/segments.md:
    the ``orders`` collection is every order, cancelled ones too; ``order.total`` is the order's total)."""
    city = "p.properties ->> 'city'" if dialect == "postgresql" else "json_extract(p.properties, '$.city')"
    return f"""
SELECT p.id FROM profiles p
WHERE p.merged_into IS NULL
  AND {city} IN ('Jakarta', 'Surabaya', 'Bandung')
  AND p.consent_email = 'subscribed'
  AND p.orders_count >= 2
  AND p.created_at < :created_before
  AND (SELECT count(*) FROM events e WHERE e.profile_id = p.id AND e.type = 'product_viewed'
       AND e.occurred_at >= :views_since AND e.occurred_at <= :now) >= 3
  AND (SELECT coalesce(sum(o.total_minor), 0) FROM orders o WHERE o.profile_id = p.id
       AND o.currency = 'IDR' AND o.placed_at >= :orders_since AND o.placed_at <= :now) >= 50000000
"""


def run(target: Target, quick: bool) -> list[Figure]:
    pop = QUICK if quick else FULL
    condition = segment_condition()
    with population(target, pop, cache=not quick) as (url, loaded):
        result = evaluate(url, condition)
    details = {"profiles": pop.profiles, "events": pop.events, "population": loaded, **result["details"]}
    members = result["members"]
    size = f"{pop.profiles:,} profiles, {pop.events:,} events"
    figures = []
    for name in ("count", "ids", "floor"):
        m = result[name]
        note = (f"{size}: {members.get(name, members['count']):,} members; cold {_fmt(m['cold_s'], m)}, "
                f"warm {_fmt(m['warm_s'], m)}")
        if m["warm_jit_off_s"] is not None:
            note += f" ({m['warm_jit_off_s']:.3f} s with jit off)"
        if name == "count":
            note += "; target ≤ 2 s on PostgreSQL"
        elif name == "floor":
            note += f"; hand-written SQL, {members['floor']:,} members vs {members['count']:,} compiled"
        figures.append(Figure(target.name, f"segment_eval {name}", pop.profiles, "profiles",
                              m["warm_s"] if m["warm_s"] is not None else m["cold_s"],
                              {**details, "cold_s": m["cold_s"], "warm_runs_s": m["warm_runs_s"],
                               "warm_jit_off_s": m["warm_jit_off_s"], "capped": m["capped"], "members": members},
                              note))
    return figures


def _fmt(seconds: float | None, m: dict[str, Any]) -> str:
    if seconds is None:
        return "-"
    return f"{'> ' if m['capped'] else ''}{seconds:.3f} s"


def evaluate(url: str, condition: Condition) -> dict[str, Any]:
    """Time the compiled members query (count, then ids) and the hand-written floor, cold then warm."""
    try:
        from storeflow.segments.sql import members_query
    except ImportError as exc:
        raise BenchmarkError(f"segment_eval: the segment SQL compiler is not there yet: {exc}") from exc
    dialect = "postgresql" if not url.startswith("sqlite") else "sqlite"
    query: Select[Any] = members_query(condition, now=NOW, store_tz=STORE_TZ, stats=None, dialect_name=dialect)
    count_query = select(func.count()).select_from(query.subquery())
    params: dict[str, Any] = {"now": NOW, "views_since": NOW - timedelta(days=30),
                              "orders_since": NOW - timedelta(days=365), "created_before": NOW - timedelta(days=30)}
    if dialect == "sqlite":  # storeflow stores naive UTC text on SQLite
        params = {k: v.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") for k, v in params.items()}
    floor = text(floor_sql(dialect)).bindparams(**params)
    out: dict[str, Any] = {"members": {}, "details": {}}
    count_sql: list[tuple[str, Any]] = []
    out["count"] = _timed(url, lambda c: c.execute(count_query).scalar_one(), capture=count_sql)
    out["members"]["count"] = out["count"]["value"]
    out["ids"] = _timed(url, lambda c: len(c.execute(query).scalars().all()))
    out["members"]["ids"] = out["ids"]["value"]
    out["floor"] = _timed(url, lambda c: len(c.execute(floor).all()))
    out["members"]["floor"] = out["floor"]["value"]
    if out["members"]["ids"] is not None and out["members"]["count"] is not None \
            and out["members"]["ids"] != out["members"]["count"]:
        raise BenchmarkError(f"segment_eval: count {out['members']['count']} but {out['members']['ids']} ids")
    if count_sql:
        out["details"]["count_sql"] = count_sql[0][0]
        out["details"]["plan"] = explain(url, *count_sql[0])
    return out


def _timed(url: str, query: Callable[[Connection], Any], *, capture: list[tuple[str, Any]] | None = None,
           warm_runs: int = WARM_RUNS) -> dict[str, Any]:
    """Cold (a new store, its first execution) then warm (median of repeats) timings of ``query``."""
    store = open_store(url)
    engine: Engine = store.engine
    try:
        with engine.connect() as conn, _captured(engine, capture), _time_cap(conn) as capped:
            started = time.perf_counter()
            try:
                value = query(conn)
            except OperationalError:
                if not capped():
                    raise
                return {"value": None, "cold_s": round(time.perf_counter() - started, 3), "warm_s": None,
                        "warm_runs_s": [], "warm_jit_off_s": None, "capped": True}
            cold = time.perf_counter() - started
            runs = []
            for _ in range(warm_runs if cold < 10 else 1):
                started = time.perf_counter()
                again = query(conn)
                runs.append(time.perf_counter() - started)
                if again != value:
                    raise BenchmarkError(f"segment_eval: {again} members, then {value}")
            jit_off = None
            if conn.dialect.name == "postgresql":  # what PostgreSQL's JIT compilation costs this query
                conn.execute(text("SET jit = off"))
                started = time.perf_counter()
                query(conn)
                jit_off = round(time.perf_counter() - started, 4)
            conn.rollback()
    finally:
        store.close()
    return {"value": value, "cold_s": round(cold, 4), "warm_s": round(statistics.median(runs), 4),
            "warm_runs_s": [round(r, 4) for r in runs], "warm_jit_off_s": jit_off, "capped": False}


@contextmanager
def _captured(engine: Engine, into: list[tuple[str, Any]] | None) -> Iterator[None]:
    """Keep the first statement (and its driver parameters) the engine sends, for EXPLAIN."""
    if into is None:
        yield
        return

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if not into and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            into.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


@contextmanager
def _time_cap(conn: Connection) -> Iterator[Callable[[], bool]]:
    """Stop a statement running past ``TIME_CAP_S``: statement_timeout on PostgreSQL, a progress
    handler on SQLite. Yields whether the cap was hit."""
    hit = [False]
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET statement_timeout = {int(TIME_CAP_S * 1000)}"))
        started = time.monotonic()

        def capped() -> bool:
            hit[0] = hit[0] or time.monotonic() - started >= TIME_CAP_S * 0.99
            return hit[0]

        yield capped
        return
    raw: Any = conn.connection.dbapi_connection
    deadline = [time.monotonic() + TIME_CAP_S]

    def progress() -> int:
        if time.monotonic() > deadline[0]:
            hit[0] = True
            return 1
        return 0

    raw.set_progress_handler(progress, 100_000)
    try:
        yield lambda: hit[0]
    finally:
        raw.set_progress_handler(None, 0)


def explain(url: str, statement: str, parameters: Any) -> str:
    """The count query's plan: measured on PostgreSQL (ANALYZE, BUFFERS), the chosen plan on SQLite."""
    store = open_store(url)
    try:
        raw: Any = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            if store.engine.dialect.name == "postgresql":
                cur.execute(f"SET statement_timeout = {int(TIME_CAP_S * 1000)}")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                lines = [row[0] for row in cur.fetchall()]
            else:
                cur.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                lines = [f"{row[1]} {row[3]}" for row in cur.fetchall()]
            raw.rollback()
        except Exception as exc:  # a plan that cannot be had is noted, not fatal
            lines = [f"no plan: {type(exc).__name__}: {exc}"]
        finally:
            raw.close()
    finally:
        store.close()
    return "\n".join(lines)

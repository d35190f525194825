"""A store's population for the segment and campaign benchmarks, written by the database itself.

Profiles (city, time zone, locale, email and SMS consent, sign-up time, how long since they were
last active), their events (a Zipf-ish number per profile, a mix of types, times spread over each
profile's active span with more of them near its end) and their orders (in the profile's currency,
a few cancelled), with the profiles' order columns (``orders_count``, ``total_spent``,
``first_order_at``, ``last_order_at``) computed from those orders, as ingest keeps them.

How it is fast: the per-profile parameters come from Python (``random.Random(seed)``; a million in a
few seconds) into a scratch table; the events and orders are then one ``INSERT ... SELECT`` each
from it (``generate_series`` on PostgreSQL, a join with a numbers table on SQLite), with the
secondary indexes dropped during the load and created again after it (the schema's own index
definitions, from ``storeflow.store.tables``). Every per-item pseudo-random value is a Weyl sequence
``(n * K) mod 2**32`` of the item's number in integer arithmetic, so both backends hold exactly the
same rows (the segment scenarios check they find the same members).

``cached_population`` keeps a generated population between runs (a SQLite file under
``$STOREFLOW_BENCH_CACHE``, default ``~/.cache/storeflow-bench``; a schema of the PostgreSQL database
``storeflow_bench_cache``), keyed by the sizes, the seed, the generator's version and the schema's
migration head; ``STOREFLOW_BENCH_CACHE=off`` generates afresh every time.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex

from benchmarks.common import open_storeflow
from benchmarks.targets import PostgresTarget, Target
from storeflow.clock import VirtualClock
from storeflow.store import tables

GENERATOR_VERSION = 1
NOW = datetime(2026, 12, 1, tzinfo=UTC)
"""The instant the populations are generated for: every time in them is before it."""
DAY = 86_400
M32 = 4_294_967_296
# Weyl multipliers (odd, near 2**32 times an irrational): one per pseudo-random quantity of an item.
K_TYPE, K_TIME, K_TIME2, K_PRODUCT, K_PRICE, K_QTY, K_STATUS = (
    2_654_435_761, 2_246_822_519, 3_266_489_917, 668_265_263, 374_761_393, 1_597_334_677, 3_812_015_801)

# (city, weight, currency, time zone, locale)
CITIES: tuple[tuple[str, int, str, str, str], ...] = (
    ("Jakarta", 24, "IDR", "Asia/Jakarta", "id_ID"),
    ("Surabaya", 12, "IDR", "Asia/Jakarta", "id_ID"),
    ("Bandung", 10, "IDR", "Asia/Jakarta", "id_ID"),
    ("Medan", 7, "IDR", "Asia/Jakarta", "id_ID"),
    ("Denpasar", 5, "IDR", "Asia/Makassar", "id_ID"),
    ("Sao Paulo", 14, "BRL", "America/Sao_Paulo", "pt_BR"),
    ("Rio de Janeiro", 8, "BRL", "America/Sao_Paulo", "pt_BR"),
    ("New York", 12, "USD", "America/New_York", "en_US"),
    ("Los Angeles", 8, "USD", "America/Los_Angeles", "en_US"),
)
COUNTRY = {"IDR": "ID", "BRL": "BR", "USD": "US"}
# Unit prices in minor units (all three currencies have two decimals in ISO 4217).
PRICES: dict[str, tuple[int, ...]] = {
    "IDR": (4_900_000, 8_900_000, 14_900_000, 25_900_000, 125_000_000),
    "BRL": (1_990, 4_990, 8_990, 14_900, 39_900),
    "USD": (499, 1_250, 2_499, 5_900, 18_000),
}
# Event types per mille: browsing dominates, as in a real store's stream.
EVENT_MIX: tuple[tuple[str, int], ...] = (
    ("product_viewed", 520), ("product_added_to_cart", 130), ("checkout_started", 60), ("order_placed", 40),
    ("email_opened", 140), ("email_clicked", 50), ("searched", 60),
)
PRODUCTS = 500
CANCELLED_PERCENT = 3
SOURCES = ("organic", "ads", "referral", "social")


@dataclass(frozen=True)
class Population:
    """Sizes and shape of a generated store. ``order_share``: the share of profiles with orders;
    ``zero_event_share``: profiles who never browsed (subscribers from a form, imported lists)."""

    profiles: int
    events: int
    seed: int = 9
    order_share: float = 0.45
    zero_event_share: float = 0.08
    merged_per_mille: int = 4

    def key(self, head: str) -> str:
        """The cache key: sizes, seed, the generator's version and the schema's migration head."""
        raw = json.dumps({**asdict(self), "v": GENERATOR_VERSION, "head": head}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


def profile_id(i: int) -> str:
    """The id of generated profile ``i`` (1-based), in the engine's format."""
    return f"prof_{i:032x}"


def event_id(n: int) -> str:
    return f"evt_{n:032x}"


def weyl(n: int, k: int) -> int:
    """The pseudo-random 32-bit value of item ``n`` for multiplier ``k`` (what the SQL computes)."""
    return (n * k) % M32


def event_type(n: int) -> str:
    """The type of event ``n``: its per-mille bucket in ``EVENT_MIX`` (what the SQL computes)."""
    bucket = weyl(n, K_TYPE) * 1000 // M32
    for name, upper in _cumulative(EVENT_MIX):
        if bucket < upper:
            return name
    raise AssertionError("unreachable: the mix sums to 1000")


def _cumulative(mix: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    out, total = [], 0
    for name, weight in mix:
        total += weight
        out.append((name, total))
    if total != 1000:
        raise ValueError(f"the mix sums to {total}, not 1000")
    return out


@dataclass(frozen=True)
class ProfileParams:
    i: int
    city: int  # index into CITIES
    source: str
    consent_email: str
    consent_sms: str
    created_s: int
    last_s: int  # last active (the time of its last event)
    n_events: int
    n_orders: int
    merged_into: int | None

    def row(self, ev_start: int, ord_start: int) -> tuple[Any, ...]:
        city, _w, currency, tz, locale = CITIES[self.city]
        props = json.dumps({"city": city, "source": self.source}, separators=(",", ":"))
        phone = f"+6281{self.i:09d}" if self.consent_sms != "never_asked" else None
        merged = profile_id(self.merged_into) if self.merged_into else None
        return (self.i, profile_id(self.i), f"c{self.i}@bench.example", phone, locale, tz, props, currency,
                COUNTRY[currency], self.consent_email, self.consent_sms, merged, self.created_s, self.last_s,
                self.n_events, ev_start, self.n_orders, ord_start)


GEN_COLUMNS = ("i", "pid", "email", "phone", "locale", "tz", "props", "currency", "country", "consent_email",
               "consent_sms", "merged_into", "created_s", "last_s", "n_events", "ev_start", "n_orders", "ord_start")


def profile_params(pop: Population) -> list[ProfileParams]:
    """Every profile's parameters, from ``random.Random(pop.seed)``; the event counts sum to
    ``pop.events`` exactly (Pareto weights, alpha 1.5, capped, scaled)."""
    rng = random.Random(pop.seed)
    now_s = int(NOW.timestamp())
    cum, total = [], 0
    for c in CITIES:
        total += c[1]
        cum.append(total)
    out: list[ProfileParams] = []
    weights: list[float] = []
    for i in range(1, pop.profiles + 1):
        city = bisect.bisect_right(cum, rng.random() * total)
        r = rng.random()
        consent_email = "subscribed" if r < 0.62 else "unsubscribed" if r < 0.72 else "never_asked"
        r = rng.random()
        consent_sms = "subscribed" if r < 0.18 else "unsubscribed" if r < 0.25 else "never_asked"
        created_s = now_s - int(DAY * (2 + 728 * rng.random() ** 1.5))
        r = rng.random()  # how long ago it was last active: many this month, a long tail of lapsed ones
        lapse = (rng.expovariate(1 / 8) if r < 0.45 else 30 + 150 * rng.random() if r < 0.75
                 else 180 + 550 * rng.random())
        last_s = max(created_s + 3_600, now_s - 60 - int(lapse * DAY))
        weight = 0.0 if rng.random() < pop.zero_event_share else min(rng.paretovariate(1.5), 250.0)
        n_orders = 0
        if rng.random() < pop.order_share:
            n_orders = 1
            while n_orders < 40 and rng.random() < 0.45:
                n_orders += 1
        merged = i - 1 if i > 1 and rng.randrange(1000) < pop.merged_per_mille else None
        if merged is not None:  # a merged profile's history moved to the one it merged into
            weight, n_orders = 0.0, 0
        source = SOURCES[rng.randrange(len(SOURCES))]
        weights.append(weight)
        out.append(ProfileParams(i, city, source, consent_email, consent_sms, created_s, last_s, 0, n_orders, merged))
    weights_total = sum(weights) or 1.0
    counts = [int(w * pop.events / weights_total) for w in weights]
    active = [k for k, w in enumerate(weights) if w > 0]
    for j in range(pop.events - sum(counts)):  # the rounding's remainder, one more each
        counts[active[j % len(active)]] += 1
    return [replace(p, n_events=n) for p, n in zip(out, counts, strict=True)]


# -- SQL ---------------------------------------------------------------------------------------------


class Dialect:
    """The few SQL fragments that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pg = name == "postgresql"

    def ts(self, seconds: str) -> str:
        """A timestamp column value from Unix seconds, as storeflow stores it."""
        if self.pg:
            return f"to_timestamp({seconds})"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"

    def hex_id(self, prefix: str, n: str) -> str:
        if self.pg:
            return f"('{prefix}' || lpad(to_hex({n}), 32, '0'))"
        return f"printf('{prefix}%032x', {n})"

    def json(self, expr: str) -> str:
        return f"({expr})::jsonb" if self.pg else expr

    def money(self, minor: str) -> str:
        """``minor`` units as the decimal text ``total_spent`` holds ("1250000.00")."""
        if self.pg:
            return f"(({minor}) / 100)::text || '.' || lpad((({minor}) % 100)::text, 2, '0')"
        return f"printf('%d.%02d', ({minor}) / 100, ({minor}) % 100)"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"max({a}, {b})"


def _weyl_sql(n: str, k: int) -> str:
    return f"((({n}) * {k}) % {M32})"


def _items(d: Dialect, count: str, start: str) -> tuple[str, str, str]:
    """FROM clause joining each ``bench_gen`` profile with its items 1..``count``, and the SQL of the
    item's global number and of its number within the profile."""
    if d.pg:
        return (f"bench_gen g CROSS JOIN LATERAL generate_series(1, g.{count}) AS s(k)", f"(g.{start} + s.k)", "s.k")
    return f"bench_gen g JOIN bench_nums s ON s.k <= g.{count}", f"(g.{start} + s.k)", "s.k"


def events_sql(d: Dialect) -> str:
    """INSERT ... SELECT of every profile's events from the scratch table ``bench_gen``."""
    source, e, k = _items(d, "n_events", "ev_start")
    bucket = f"({_weyl_sql(e, K_TYPE)} * 1000 / {M32})"
    cases = " ".join(f"WHEN {bucket} < {upper} THEN '{name}'" for name, upper in _cumulative(EVENT_MIX))
    # Times: over the profile's active span, the larger of two uniform draws (more near its end); the
    # profile's last event is at its last-active time exactly.
    u = d.greatest(_weyl_sql(e, K_TIME), _weyl_sql(e, K_TIME2))
    secs = f"(CASE WHEN {k} = g.n_events THEN g.last_s ELSE g.created_s + (g.last_s - g.created_s) * {u} / {M32} END)"
    h16 = f"({_weyl_sql(e, K_PRODUCT)} / 65536)"
    product = f"({h16} * {h16} * {PRODUCTS} / {M32})"  # Zipf-ish: low product numbers are the popular ones
    product_events = EVENT_MIX[0][1] + EVENT_MIX[1][1]  # viewed and added to cart name a product
    props = f"CASE WHEN {bucket} < {product_events} THEN '{{\"product_id\":\"p' || {product} || '\"}}' ELSE '{{}}' END"
    return (f"INSERT INTO events (id, type, profile_id, occurred_at, received_at, source, idempotency_key,"
            f" properties) SELECT {d.hex_id('evt_', e)}, CASE {cases} END, g.pid, {d.ts(secs)}, {d.ts(secs)}, "
            f"'import', 'import:gen-' || {e}, {d.json(props)} FROM {source}")  # in bench_gen's order: no sort


def orders_sql(d: Dialect) -> str:
    """INSERT ... SELECT of every profile's orders: spread over its active span in order, in its
    currency, one to three units of one of five prices, ``CANCELLED_PERCENT`` % cancelled."""
    source, o, k = _items(d, "n_orders", "ord_start")
    tier = f"({_weyl_sql(o, K_PRICE)} * 5 / {M32})"
    price = "CASE g.currency " + " ".join(
        f"WHEN '{cur}' THEN CASE {tier} " + " ".join(f"WHEN {j} THEN {p}" for j, p in enumerate(prices)) + " END"
        for cur, prices in PRICES.items()) + " END"
    qty = f"(1 + {_weyl_sql(o, K_QTY)} % 3)"
    span = "(g.last_s - g.created_s)"
    secs = (f"(g.created_s + {span} * ({k} - 1) / g.n_orders + "
            f"{span} * {_weyl_sql(o, K_TIME)} / {M32} / g.n_orders)")
    status = f"CASE WHEN {_weyl_sql(o, K_STATUS)} * 100 / {M32} < {CANCELLED_PERCENT} THEN 'cancelled' ELSE 'open' END"
    h16 = f"({_weyl_sql(o, K_PRODUCT)} / 65536)"
    lines = (f"'[{{\"product_id\":\"p' || ({h16} * {h16} * {PRODUCTS} / {M32}) || '\",\"quantity\":' || {qty} "
             f"|| '}}]'")
    empty_list, empty_map = d.json("'[]'"), d.json("'{}'")
    return (f"INSERT INTO orders (id, profile_id, number, status, financial_status, fulfillment_status, currency,"
            f" total_minor, refunded_minor, tags, shipping_country, line_items, properties, placed_at, updated_at)"
            f" SELECT 'o-gen-' || {o}, g.pid, '#' || (100000 + {o}), {status}, 'paid', 'fulfilled', g.currency,"
            f" ({price}) * {qty}, 0, {empty_list}, g.country, {d.json(lines)}, {empty_map},"
            f" {d.ts(secs)}, {d.ts(secs)} FROM {source} ORDER BY g.i, {k}")


def profiles_sql(d: Dialect) -> str:
    """INSERT ... SELECT of the profiles, their order columns computed from the orders just written
    (live orders only, as ingest computes them)."""
    spent = (f"CASE WHEN a.n IS NULL THEN '{{}}' ELSE '{{\"' || g.currency || '\":\"' || {d.money('a.total')} "
             f"|| '\"}}' END")
    now_s = int(NOW.timestamp())
    empty_list = d.json("'[]'")
    return (f"INSERT INTO profiles (id, email, phone, locale, timezone, properties, tags, consent_email, consent_sms,"
            f" consent_push, orders_count, total_spent, first_order_at, last_order_at, last_active_at, created_at,"
            f" updated_at, merged_into)"
            f" SELECT g.pid, g.email, g.phone, g.locale, g.tz, {d.json('g.props')}, {empty_list},"
            f" g.consent_email, g.consent_sms, 'never_asked', COALESCE(a.n, 0), {d.json(spent)}, a.first_at,"
            f" a.last_at, CASE WHEN g.n_events > 0 THEN {d.ts('g.last_s')} END, {d.ts('g.created_s')},"
            f" {d.ts(str(now_s))}, g.merged_into"
            f" FROM bench_gen g LEFT JOIN (SELECT profile_id, count(*) AS n, sum(total_minor) AS total,"
            f" min(placed_at) AS first_at, max(placed_at) AS last_at FROM orders WHERE status <> 'cancelled'"
            f" GROUP BY profile_id) AS a ON a.profile_id = g.pid ORDER BY g.i")


# -- loading -----------------------------------------------------------------------------------------

GEN_TABLE = ("CREATE TEMP TABLE bench_gen (i INTEGER PRIMARY KEY, pid VARCHAR(64), email VARCHAR(320),"
             " phone VARCHAR(32), locale VARCHAR(35), tz VARCHAR(64), props TEXT, currency VARCHAR(3),"
             " country VARCHAR(2), consent_email VARCHAR(16), consent_sms VARCHAR(16), merged_into VARCHAR(64),"
             " created_s BIGINT, last_s BIGINT, n_events BIGINT, ev_start BIGINT, n_orders BIGINT,"
             " ord_start BIGINT)")
LOADED = (tables.profiles, tables.orders, tables.events)


def gen_rows(params: Sequence[ProfileParams]) -> list[tuple[Any, ...]]:
    """The scratch table's rows: each profile with the global numbers its events and orders start after."""
    rows, ev, od = [], 0, 0
    for p in params:
        rows.append(p.row(ev, od))
        ev += p.n_events
        od += p.n_orders
    return rows


def _index_ddl(dialect_name: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX) of the loaded tables' secondary indexes, as the schema declares them."""
    dialect: Any = postgresql.dialect() if dialect_name == "postgresql" else sqlite.dialect()  # type: ignore[no-untyped-call]
    return [(str(ix.name), str(CreateIndex(ix).compile(dialect=dialect))) for table in LOADED for ix in table.indexes]


def load(url: str, pop: Population) -> dict[str, Any]:
    """Fill the (migrated, empty) database at ``url`` with the population; returns what it wrote and
    how long each part took."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    params = profile_params(pop)
    rows = gen_rows(params)
    timings["params_s"] = round(time.perf_counter() - started, 2)
    if url.startswith("sqlite"):
        counts = _load_sqlite(url.split("///", 1)[1], rows, timings)
    else:
        counts = _load_postgres(url, rows, timings)
    timings["total_s"] = round(time.perf_counter() - started, 2)
    if counts["events"] != pop.events or counts["profiles"] != pop.profiles:
        raise RuntimeError(f"generated {counts}, not {pop}")
    return {**counts, "timings": timings, "population": asdict(pop)}


def _timed(timings: dict[str, float], name: str, conn: Any, sql: str) -> None:
    t = time.perf_counter()
    if isinstance(conn, Connection):
        conn.execute(text(sql))
    else:
        conn.execute(sql)
    timings[name] = round(time.perf_counter() - t, 2)


def _load_sqlite(path: str, rows: list[tuple[Any, ...]], timings: dict[str, float]) -> dict[str, int]:
    d = Dialect("sqlite")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a bulk load into a file nobody else has open
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-524288")  # 512 MiB
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("BEGIN")
        ddl = _index_ddl("sqlite")
        for name, _ in ddl:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute(GEN_TABLE)
        conn.executemany(f"INSERT INTO bench_gen VALUES ({', '.join('?' * len(GEN_COLUMNS))})", rows)
        most = max((r[GEN_COLUMNS.index("n_events")] for r in rows), default=0)
        most = max(most, max((r[GEN_COLUMNS.index("n_orders")] for r in rows), default=0), 1)
        conn.execute("CREATE TEMP TABLE bench_nums (k INTEGER PRIMARY KEY)")
        conn.execute("WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < ?) "
                     "INSERT INTO bench_nums SELECT k FROM c", (most,))
        _timed(timings, "orders_s", conn, orders_sql(d))
        _timed(timings, "profiles_s", conn, profiles_sql(d))
        _timed(timings, "events_s", conn, events_sql(d))
        t = time.perf_counter()
        for _name, create in ddl:
            conn.execute(create)
        timings["indexes_s"] = round(time.perf_counter() - t, 2)
        conn.execute("DROP TABLE bench_gen")
        conn.execute("DROP TABLE bench_nums")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # as storeflow runs it
        return {name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
                for name in ("profiles", "orders", "events")}
    finally:
        conn.close()


def _load_postgres(url: str, rows: list[tuple[Any, ...]], timings: dict[str, float]) -> dict[str, int]:
    d = Dialect("postgresql")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))  # the load's index builds only
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
            ddl = _index_ddl("postgresql")
            for name, _ in ddl:
                conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
            conn.execute(text(GEN_TABLE + " ON COMMIT DROP"))
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                with cursor.copy(f"COPY bench_gen ({', '.join(GEN_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            finally:
                cursor.close()
            conn.execute(text("ANALYZE bench_gen"))
            _timed(timings, "orders_s", conn, orders_sql(d))
            _timed(timings, "profiles_s", conn, profiles_sql(d))
            _timed(timings, "events_s", conn, events_sql(d))
            t = time.perf_counter()
            for _name, create in ddl:
                conn.execute(text(create))
            timings["indexes_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in ("profiles", "orders", "events"):  # as autovacuum would have, after the load
                conn.execute(text(f"VACUUM ANALYZE {name}"))
        timings["vacuum_analyze_s"] = round(time.perf_counter() - t, 2)
        with engine.connect() as conn:
            return {name: int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
                    for name in ("profiles", "orders", "events")}
    finally:
        engine.dispose()


# -- the cache ---------------------------------------------------------------------------------------

CACHE_DATABASE = "storeflow_bench_cache"
MARKER = "bench_population"


def cache_dir() -> Path | None:
    """Where SQLite populations are kept (None: ``STOREFLOW_BENCH_CACHE=off``, no cache)."""
    value = os.environ.get("STOREFLOW_BENCH_CACHE", "")
    if value.lower() in ("off", "0", "no", "false"):
        return None
    return Path(value) if value else Path.home() / ".cache" / "storeflow-bench"


def migration_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storeflow.store.sql.store import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def fresh(url: str, pop: Population) -> dict[str, Any]:
    """Migrate the empty database at ``url`` as storeflow does, load the population and mark it done."""
    open_storeflow(url, VirtualClock(NOW)).close()
    info = load(url, pop)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(tables.meta.insert().values(key=MARKER, value=json.dumps(info)))
    finally:
        engine.dispose()
    return info


def _marker(url: str) -> dict[str, Any] | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": MARKER}).scalar()
    except Exception:  # no such table or schema: not generated
        return None
    finally:
        engine.dispose()
    return json.loads(value) if value else None


@contextmanager
def population(target: Target, pop: Population, *, cache: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """A database holding ``pop`` and what its loading took (``cached``: reused from an earlier run).
    With ``cache`` (and the cache on) the database is kept for the next run: use it read-only."""
    if not cache or cache_dir() is None:
        with target.database() as url:
            yield url, {**fresh(url, pop), "cached": False}
        return
    name = f"population_{pop.profiles}_{pop.events}_{pop.key(migration_head())}"
    url = _postgres_cache(target, name, pop) if isinstance(target, PostgresTarget) else _sqlite_cache(name, pop)
    info = _marker(url)
    if info is None:
        raise RuntimeError(f"the cached population at {url} has no marker")
    yield url, info


def _sqlite_cache(name: str, pop: Population) -> str:
    directory = cache_dir()
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.db"
    if path.exists() and _marker(f"sqlite:///{path}") is not None:
        _mark_cached(f"sqlite:///{path}")
        return f"sqlite:///{path}"
    for old in directory.glob(f"population_{pop.profiles}_{pop.events}_*.db*"):  # other versions of it
        old.unlink()
    partial = directory / f"{name}.partial.db"
    for leftover in directory.glob(f"{partial.name}*"):
        leftover.unlink()
    fresh(f"sqlite:///{partial}", pop)
    os.replace(partial, path)
    return f"sqlite:///{path}"


def _postgres_cache(target: PostgresTarget, name: str, pop: Population) -> str:
    admin = create_engine(target.server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": CACHE_DATABASE}).scalar():
                conn.execute(text(f'CREATE DATABASE "{CACHE_DATABASE}"'))
    finally:
        admin.dispose()
    server = make_url(str(target.server_url.render_as_string(hide_password=False))).set(database=CACHE_DATABASE)
    url = server.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
    if _marker(url) is not None:
        _mark_cached(url)
        return url
    cache = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with cache.connect() as conn:
            for (old,) in conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                                       {"p": f"population_{pop.profiles}_{pop.events}_%"}).all():
                conn.execute(text(f'DROP SCHEMA "{old}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        try:
            fresh(url, pop)
        except BaseException:
            with cache.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            raise
    finally:
        cache.dispose()
    return url


def _mark_cached(url: str) -> None:
    """Record in the marker that this run reused the population (its load timings are an earlier run's)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            value = conn.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": MARKER}).scalar_one()
            info = {**json.loads(value), "cached": True}
            conn.execute(text("UPDATE meta SET value = :v WHERE key = :k"), {"k": MARKER, "v": json.dumps(info)})
    finally:
        engine.dispose()

"""Ingest with 50 live segments against none, and how soon ``segment_entered`` is stored.

Each round is one fresh database with the 47 flows (``flows47.py``) and either no segment or the
fifty of ``segments50.py`` (computed in full once, on the empty store). A real worker process
(``storeflow serve --worker-only``, system clock: the flows' steps, their emails to a local SMTP
server, and the membership engine as the app runs it) runs beside this process, which ingests the
workload's commerce events (``workload.commerce_events``, 5,000 shoppers) through
``Storeflow.ingest`` in batches of 1,000 as fast as it goes. With several rounds (``Sizes.rounds``)
they alternate none / fifty, so the shared machine's drift hits both alike, and the figures are the
medians; the full size runs one round of each (the machine's time budget).

- ``segment_ingest``: events/s with the fifty segments, beside the same without
  (target: at most 15% slower), and how long after the last batch every queued change was applied.
- ``segment_ingest entered``: one ``bench_probe`` event of a fresh profile rides in every batch and
  enters the ``probe`` segment; its latency is the ``segment_entered`` event's ``received_at`` minus
  the probe's ``received_at`` (both stored; target p99 <= 1 s). Every other entry by an event is
  also timed, against the latest event its profile had stored before it (``entries_*``).
"""

from __future__ import annotations

import bisect
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.common import BenchmarkError, Figure, open_storeflow
from benchmarks.email import SmtpSink
from benchmarks.flows47 import apply_all
from benchmarks.latency import worker_process
from benchmarks.segments50 import PROBE_EVENT, PROBE_SEGMENT, SEGMENTS_50
from benchmarks.targets import Target
from benchmarks.workload import commerce_events
from storeflow.clock import SystemClock
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import events, segment_changes, segment_membership_log, segments


@dataclass(frozen=True)
class Sizes:
    events: int
    batch: int
    profiles: int
    rounds: int  # of each configuration, alternated
    settle_cap_s: float  # give up waiting for the engine this long after the last batch
    ingest_cap_s: float  # stop sending batches after this long (the rate is then over the events sent)


QUICK = Sizes(events=300, batch=100, profiles=40, rounds=1, settle_cap_s=60.0, ingest_cap_s=120.0)
FULL = Sizes(events=30_000, batch=1_000, profiles=5_000, rounds=1, settle_cap_s=120.0, ingest_cap_s=150.0)


def run(target: Target, quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    none: list[dict[str, Any]] = []
    fifty: list[dict[str, Any]] = []
    for _ in range(sizes.rounds):
        none.append(one_round(target, sizes, with_segments=False))
        fifty.append(one_round(target, sizes, with_segments=True))
    rate_none = statistics.median(r["events_per_second"] for r in none)
    rate_50 = statistics.median(r["events_per_second"] for r in fifty)
    slower = round(100 * (1 - rate_50 / rate_none), 1) if rate_none else None
    cpu_none = statistics.median(r["cpu_per_1000_events"] for r in none)
    cpu_50 = statistics.median(r["cpu_per_1000_events"] for r in fifty)
    cpu_more = round(100 * (cpu_50 / cpu_none - 1), 1) if cpu_none else None  # the steadier comparison
    last = fifty[-1]
    probes = sorted(x for r in fifty for x in r["probe_latencies_s"])
    entries = sorted(x for r in fifty for x in r["entry_latencies_s"])
    lat = _summary(probes)
    ent = _summary(entries)
    common = {"events": sizes.events, "batch": sizes.batch, "profiles": sizes.profiles, "live_flows": last["flows"],
              "rounds": sizes.rounds, "topology": "ingest in this process; storeflow serve --worker-only beside it"}
    base = Figure(target.name, "segment_ingest none", sum(r["events_sent"] for r in none), "events",
                  sum(r["ingest_s"] for r in none),
                  {**common, "segments": 0, "runs": none},
                  note=f"{last['flows']} live flows, no segment, batches of {sizes.batch:,}; rounds "
                       + " · ".join(f"{r['events_per_second']:,.0f}" for r in none) + " events/s")
    with_50 = Figure(target.name, "segment_ingest", sum(r["events_sent"] for r in fifty), "events",
                     sum(r["ingest_s"] for r in fifty),
                     {**common, "segments": last["segments"], "slower_percent": slower,
                      "ingest_cpu_more_percent": cpu_more,
                      "settle_s_median": statistics.median(r["settle_s"] for r in fifty), "runs": fifty},
                     note=(f"{last['flows']} live flows + {last['segments']} live segments: "
                           f"{_change(slower)} than none (target: at most 15% slower); rounds "
                           + " · ".join(f"{r['events_per_second']:,.0f}" for r in fifty)
                           + f" events/s; ingest CPU {cpu_more:+.1f}% ({cpu_50:.2f} s vs {cpu_none:.2f} s per 1,000);"
                           f" every change applied {_settle(fifty)} after the last batch"
                           + _capped(none + fifty, sizes)))
    entered = Figure(target.name, "segment_ingest entered", len(probes), "probes",
                     sum(r["ingest_s"] for r in fifty),
                     {**common, "probe": lat, "entries": ent,
                      "entries_by_event": len(entries),
                      "probes_not_entered": sum(r["probes_not_entered"] for r in fifty)},
                     note=(f"event received -> segment_entered stored: p50 {lat['p50_s']} s, p99 {lat['p99_s']} s, "
                           + (f"(≥: {sum(r['probes_not_entered'] for r in fifty)} never entered) "
                              if any(r["probes_not_entered"] for r in fifty) else "")
                           + f"max {lat['max_s']} s over {len(probes)} probes (target p99 ≤ 1 s); all "
                           f"{len(entries):,} entries by event: p99 {ent['p99_s']} s"))
    return [with_50, base, entered]


def _capped(rounds: list[dict[str, Any]], sizes: Sizes) -> str:
    short = [r for r in rounds if r["events_sent"] < sizes.events]
    if not short:
        return ""
    return "; " + ", ".join(f"{'with' if r['segments'] else 'without'} segments only {r['events_sent']:,} events"
                            for r in short) + f" were sent in the {sizes.ingest_cap_s:.0f} s allowed"


def _settle(rounds: list[dict[str, Any]]) -> str:
    seconds = statistics.median(r["settle_s"] for r in rounds)
    if all(r["caught_up"] for r in rounds):
        return f"{seconds:.1f} s"
    return f"not within {seconds:.0f} s ({sum(not r['caught_up'] for r in rounds)} of {len(rounds)} rounds)"


def _change(slower: float | None) -> str:
    if slower is None:
        return "?"
    return f"{slower:.1f}% slower" if slower >= 0 else f"{-slower:.1f}% faster"


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"p50_s": None, "p99_s": None, "max_s": None, "count": 0}

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))], 3)

    return {"p50_s": pct(0.5), "p90_s": pct(0.9), "p99_s": pct(0.99), "max_s": round(values[-1], 3),
            "count": len(values)}


def _probe(n: int) -> dict[str, Any]:
    return {"type": PROBE_EVENT, "id": f"probe-{n}", "email": f"probe{n}@bench.example",
            "occurred_at": datetime.now(UTC).isoformat()}


def _cpu_seconds(pid: int) -> float | None:
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(target: Target, sizes: Sizes, *, with_segments: bool) -> dict[str, Any]:
    with target.database() as url, SmtpSink() as smtp:
        settings = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "signing_secret": "b" * 32}
        sf = open_storeflow(url, SystemClock(), **settings)
        try:
            flows = apply_all(sf)
            applied = 0
            if with_segments:
                defns = [sf.segments.load(doc, source=f"segments50/{doc['id']}.json") for doc in SEGMENTS_50]
                applied = len(sf.segments.apply_all(defns))
            workload = commerce_events(sizes.events, profiles=sizes.profiles, now=datetime.now(UTC))
            env = {"STOREFLOW_SMTP_HOST": "127.0.0.1", "STOREFLOW_SMTP_PORT": str(smtp.port),
                   "STOREFLOW_SIGNING_SECRET": "b" * 32, "STOREFLOW_WORKER_POLL_INTERVAL_S": "0.05"}
            with worker_process(url, env) as worker:
                if with_segments:
                    _wait(lambda: _uncomputed(sf) == 0, 120.0, "the worker did not compute the new segments")
                worker_cpu0 = _cpu_seconds(worker.pid)
                started, cpu0 = time.perf_counter(), time.process_time()
                accepted = 0
                sent = probes = 0
                for n, i in enumerate(range(0, len(workload), sizes.batch)):
                    if time.perf_counter() - started > sizes.ingest_cap_s:
                        break  # too slow to finish in the run's budget: the rate is over what was sent
                    items = workload[i:i + sizes.batch] + ([_probe(n)] if with_segments else [])
                    accepted += sum(1 for r in sf.ingest(items) if r.status == "accepted")
                    sent += len(items) - (1 if with_segments else 0)
                    probes += 1 if with_segments else 0
                ingest_s, cpu = time.perf_counter() - started, time.process_time() - cpu0
                settle_s = 0.0
                caught_up = True
                if with_segments:  # until every queued change is applied (or the cap: a lower bound)
                    deadline = time.monotonic() + sizes.settle_cap_s
                    while not _settled(sf, probes) and time.monotonic() < deadline:
                        time.sleep(0.1)
                    settle_s = time.perf_counter() - started - ingest_s
                    caught_up = _settled(sf, probes)
                worker_cpu = _cpu_seconds(worker.pid)
                stopped_at = time.time()
            probe_lat, entry_lat, left = _latencies(sf, stopped_at) if with_segments else ([], [], 0)
        finally:
            sf.close()
    expected = sent + probes
    if accepted != expected:
        raise BenchmarkError(f"segment_ingest: {accepted} of {expected} events accepted")
    if with_segments and len(probe_lat) != probes:
        raise BenchmarkError(f"segment_ingest: {len(probe_lat)} of {probes} probes timed")
    return {"flows": flows, "segments": applied, "caught_up": caught_up,
            "probes_not_entered": left, "ingest_s": round(ingest_s, 3), "cpu_seconds": round(cpu, 3),
            "cpu_per_1000_events": round(1000 * cpu / sent, 3) if sent else None,
            "events_sent": sent, "events_per_second": round(sent / ingest_s, 1), "settle_s": round(settle_s, 3),
            "worker_cpu_seconds": round(worker_cpu - worker_cpu0, 3)
            if worker_cpu is not None and worker_cpu0 is not None else None,
            "probe_latencies_s": probe_lat, "entry_latencies_s": entry_lat}


def _wait(done: Any, cap: float, what: str) -> None:
    """Poll ``done`` every 0.1 s; BenchmarkError after ``cap`` seconds."""
    deadline = time.monotonic() + cap
    while not done():
        if time.monotonic() > deadline:
            raise BenchmarkError(f"segment_ingest: {what} within {cap:.0f} s")
        time.sleep(0.1)


def _uncomputed(sf: Any) -> int:
    with sf.store.read() as tx:
        return int(sql_connection(tx).execute(
            select(func.count()).select_from(segments).where(
                segments.c.status == "live",
                (segments.c.computed_version.is_(None)) | (segments.c.computed_version != segments.c.current_version))
        ).scalar_one())


def _settled(sf: Any, probes: int) -> bool:
    with sf.store.read() as tx:
        queued = sql_connection(tx).execute(select(func.count()).select_from(segment_changes)).scalar_one()
        entered = sql_connection(tx).execute(select(func.count()).select_from(segment_membership_log).where(
            segment_membership_log.c.segment_id == PROBE_SEGMENT)).scalar_one()
    return bool(queued == 0 and entered >= probes)


def _latencies(sf: Any, stopped_at: float) -> tuple[list[float], list[float], int]:
    """Probe latencies (stored probe to stored ``segment_entered``; a probe not entered when the
    engine was left counts with the time it had waited, a lower bound), every entry by an event
    (its ``segment_entered``'s ``received_at`` minus the latest other event its profile had stored
    when the engine's tick began, the stay's ``entered_at``), and how many probes had not entered."""
    with sf.store.read() as tx:
        conn = sql_connection(tx)
        sent = dict(conn.execute(select(events.c.profile_id, events.c.received_at)
                                 .where(events.c.type == PROBE_EVENT)).all())
        stored: dict[tuple[str, str], list[datetime]] = {}
        for pid, at, props in conn.execute(select(events.c.profile_id, events.c.received_at, events.c.properties)
                                           .where(events.c.type == "segment_entered")):
            stored.setdefault((pid, str(props.get("segment_id"))), []).append(at)
        stays = conn.execute(select(segment_membership_log.c.profile_id, segment_membership_log.c.segment_id,
                                    segment_membership_log.c.entered_at)
                             .where(segment_membership_log.c.entered_by == "event")).all()
        times: dict[str, list[datetime]] = {}
        for pid, at in conn.execute(select(events.c.profile_id, events.c.received_at)
                                    .where(events.c.type.not_in(("segment_entered", "segment_exited")))):
            times.setdefault(pid, []).append(at)
    for values in (*times.values(), *stored.values()):
        values.sort()
    probe: list[float] = []
    left = 0
    for pid, at in sent.items():
        entered = stored.get((pid, PROBE_SEGMENT))
        if entered:
            probe.append((entered[0] - at).total_seconds())
        else:
            left += 1
            probe.append(stopped_at - at.timestamp())
    entries = []
    for pid, sid, began in stays:
        seen, done = times.get(pid, []), stored.get((pid, sid), [])
        i, j = bisect.bisect_right(seen, began), bisect.bisect_left(done, began)
        if i and j < len(done):
            entries.append((done[j] - seen[i - 1]).total_seconds())
    return sorted(probe), sorted(entries), left

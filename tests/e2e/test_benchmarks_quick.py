"""The benchmarks' quick mode, in process: every scenario runs and produces positive figures.

How fast is not asserted (that is what BENCHMARKS.md is for); that the harness works, is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"ingest api", "ingest engine", "ingest floor", "import", "import floor", "latency", "latency paced",
             "steps", "email", "email render", "email send", "month", "timers",
             "segment_eval count", "segment_eval ids", "segment_eval floor",
             "segment_ingest", "segment_ingest none", "segment_ingest entered",
             "segment_time", "segment_time compute", "campaign", "campaign send", "campaign audience"}
POSTGRES_ONLY = {"timers procrastinate"}  # the peer job queue runs on PostgreSQL only


def run_quick(backend: str, out: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, object]:
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ lives at the repo root, beside src/
    from benchmarks.__main__ import main

    assert main(["--quick", "--backend", backend, "--json", str(out), *extra]) == 0
    doc: dict[str, object] = json.loads(out.read_text())
    return doc


def check_figures(doc: dict[str, object], backend: str) -> None:
    results = doc["results"]
    assert isinstance(results, list)
    assert {r["scenario"] for r in results} == SCENARIOS | (POSTGRES_ONLY if backend == "postgres" else set())
    for r in results:
        assert r["backend"] == backend
        assert r["count"] > 0 and r["seconds"] > 0 and r["per_second"] > 0, r
    by_name = {r["scenario"]: r for r in results}
    for name in ("ingest api", "ingest engine"):
        ingest = by_name[name]["details"]
        assert ingest["live_flows"] == 47 and ingest["runs_started"] > 0 and ingest["floor_ratio"] > 0
    assert by_name["import"]["count"] == by_name["import"]["details"]["events_stored"]
    assert by_name["import"]["details"]["floor_ratio"] > 0
    lat = by_name["latency"]["details"]
    assert lat["p99_ms"] >= lat["p50_ms"] >= 0 and lat["load_events_per_second"] > 0
    assert by_name["steps"]["count"] == by_name["steps"]["details"]["runs"] * 10
    if backend == "postgres":  # the same due runs drained by 1, then by 2 worker processes
        assert by_name["steps"]["details"]["processes_2_steps_per_second"] > 0
        assert by_name["steps"]["details"]["process_scaling"] > 0
    mail = by_name["email"]["details"]
    assert by_name["email"]["count"] == mail["messages"] == mail["received"]  # every message arrived once
    assert mail["render_per_second"] > 0 and mail["send_per_second"] > 0
    month = by_name["month"]["details"]
    assert month["flows"] == 47 and month["steps"] > 0 and month["messages_sent"] > 0 and month["peak_rss_mb"] > 0
    assert month["mailbox_received"] == month["messages_sent"]  # every email sent arrived
    for name in {"timers"} | (POSTGRES_ONLY if backend == "postgres" else set()):
        timers = by_name[name]["details"]
        assert timers["fired"] > 0 and timers["fired"] + timers["unfired"] == timers["due"], timers
        assert timers["late_p99_s"] >= timers["late_p50_s"] >= 0 and timers["late_max_s"] > 0
        assert timers["fired_per_second"] > 0 and timers["worker_peak_rss_mb"] > 0 and timers["seed_seconds"] > 0
    if backend == "postgres":
        assert by_name["timers"]["details"]["vs_procrastinate"]["late_p99_ratio"] > 0
    check_segment_figures(by_name)
    machine = doc["machine"]
    assert isinstance(machine, dict) and machine["cores"] and machine["python"]


def check_segment_figures(by_name: dict[str, dict[str, Any]]) -> None:
    """Issue 9's scenarios: the compiled segment agrees with the hand-written one, probes entered,
    exits came due, every campaign recipient was handled and every message sent arrived."""
    members = by_name["segment_eval count"]["details"]["members"]
    assert members["count"] == members["ids"] == members["floor"] > 0, members
    ingest = by_name["segment_ingest"]["details"]
    assert ingest["segments"] == 50 and ingest["live_flows"] == 47 and ingest["slower_percent"] is not None
    entered = by_name["segment_ingest entered"]["details"]["probe"]
    assert entered["count"] > 0 and entered["p99_s"] >= entered["p50_s"] >= 0
    time_ = by_name["segment_time"]["details"]
    assert time_["exited"] + time_["unexited"] == time_["due"] and time_["late_p99_s"] >= time_["late_p50_s"]
    assert time_["worker_peak_rss_mb"] > 0 and by_name["segment_time compute"]["count"] == time_["members"]
    camp = by_name["campaign"]["details"]
    assert camp["audience"] == camp["queued"] + camp["skipped"] > 0 and camp["freeze_queue_s"] > 0
    assert camp["smtp_received"] >= camp["sent_total"] > 0


def test_quick_benchmarks_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = run_quick("sqlite", tmp_path / "quick.json", monkeypatch)
    check_figures(doc, "sqlite")
    assert doc["backends"]["sqlite"]["version"]  # type: ignore[index]


def test_quick_benchmarks_on_postgres(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pg_url applies the suite's rules (skip without PostgreSQL, fail under CI=true); the benchmark
    # replaces its search_path with schemas of its own, dropped afterwards.
    doc = run_quick("postgres", tmp_path / "quick.json", monkeypatch, "--postgres-url", pg_url)
    check_figures(doc, "postgres")
    assert doc["backends"]["postgres"]["version"]  # type: ignore[index]


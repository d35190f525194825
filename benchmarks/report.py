"""The machine the figures were measured on, the Rich table, and the JSON document."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import Figure


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    """A read-only git command in this checkout (GIT_OPTIONAL_LOCKS=0: not even a refreshed index)."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False,
                              cwd=Path(__file__).resolve().parent, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None


def _commit() -> dict[str, Any] | None:
    head = _git("rev-parse", "--short", "HEAD")
    if head is None or head.returncode != 0:
        return None
    diff = _git("diff", "--quiet", "HEAD", "--", "src")
    return {"head": head.stdout.strip(), "src_changed": None if diff is None else diff.returncode == 1}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gib": _memory_gib(),
        "load_at_end": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in ("storeflow", "sqlalchemy", "psycopg")},
        "commit": _commit(),
    }


def table(figures: list[Figure], title: str) -> Table:
    out = Table(title=title)
    out.add_column("backend")
    out.add_column("scenario")
    out.add_column("size", justify="right")
    out.add_column("seconds", justify="right")
    out.add_column("rate", justify="right")
    out.add_column("notes")
    for f in figures:
        notes = f.note
        if notes:
            pass
        elif f.scenario == "ingest":
            notes = (f"{f.details['live_flows']} live flows, batches of {f.details['batch']:,}, "
                     f"{f.details['runs_started']:,} runs started, {f.details['sql_per_event']:g} SQL/event")
            if f.details.get("floor_ratio"):
                notes += f"; floor {f.details['floor_ratio']:g}x faster"
        elif f.scenario == "ingest floor":
            notes = "raw INSERT, one executemany, one transaction"
        elif f.scenario == "steps":
            notes = (f"{f.details['runs']:,} runs x {f.details['steps_per_run']} steps, "
                     f"{f.details['runs_per_second']:,} runs/s, batches of {f.details['worker_batch_size']}, "
                     f"{f.details['sql_per_step']:g} SQL/step")
        out.add_row(f.backend, f.scenario, f"{f.count:,} {f.unit}", f"{f.seconds:.2f}",
                    f"{f.rate:,.0f} {f.unit}/s", notes)
    return out


def document(figures: list[Figure], *, argv: list[str], args: dict[str, Any],
             backends: dict[str, dict[str, str]], skipped: dict[str, str],
             load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """The JSON document; ``machine.load_at_end`` is taken at the end, ``load_at_start`` before the
    first scenario (other work on the machine shows there, and skews wall-clock figures)."""
    return {
        "command": " ".join(["python -m benchmarks", *argv]),
        "args": args,
        "machine": {**machine(), "load_at_start": [round(x, 2) for x in load_at_start]},
        "backends": backends,
        "skipped": skipped,
        "results": [f.as_json() for f in figures],
    }


def markdown(doc: dict[str, Any]) -> str:
    """The figures of a JSON document as a Markdown table (for BENCHMARKS.md)."""
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    lines = ["| backend | scenario | size | seconds | rate | notes |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in doc["results"]:
        note = str(r.get("note") or "").replace("|", "\\|")
        lines.append(f"| {names.get(r['backend'], r['backend'])} | {r['scenario']} | {r['count']:,} {r['unit']} | "
                     f"{r['seconds']:,.2f} | {r['per_second']:,.0f} {r['unit']}/s | {note} |")
    return "\n".join(lines) + "\n"


def _main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json``: print the figures as a Markdown table."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=_main.__doc__)
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    print(markdown(json.loads(args.results.read_text())), end="")
    return 0


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def print_table(console: Console, figures: list[Figure], title: str) -> None:
    console.print(table(figures, title))


if __name__ == "__main__":
    raise SystemExit(_main())

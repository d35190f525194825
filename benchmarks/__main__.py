"""``python -m benchmarks [--quick] [--backend sqlite|postgres|all] [--json out.json]``

Runs every scenario on each chosen backend, prints a table and (with --json) writes the figures with
the machine they were measured on. PostgreSQL comes from --postgres-url, else
STOREFLOW_BENCH_POSTGRES_URL, else STOREFLOW_TEST_POSTGRES_URL, else the local server (database
``test``); each scenario gets its own schema there, dropped afterwards. With --backend all, an
unreachable PostgreSQL is skipped (and said so); with --backend postgres it is an error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from rich.console import Console

from benchmarks.report import document, print_table, write_json
from benchmarks.scenarios import SCENARIOS, Figure
from benchmarks.targets import DEFAULT_POSTGRES_URL, PostgresTarget, SqliteTarget, Target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a few seconds")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures and the machine as JSON")
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL server (its search_path is replaced)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                        help="run only this scenario (repeatable); default: all")
    return parser


def postgres_url(given: str | None) -> str:
    return (given or os.environ.get("STOREFLOW_BENCH_POSTGRES_URL")
            or os.environ.get("STOREFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log or a pipe: keep the table's rows on one line
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    if args.backend in ("sqlite", "all"):
        targets.append(SqliteTarget())
    if args.backend in ("postgres", "all"):
        pg = PostgresTarget(postgres_url(args.postgres_url))
        problem = pg.problem()
        if problem is None:
            targets.append(pg)
        elif args.backend == "postgres":
            console.print(f"[red]{problem}[/red]")
            return 2
        else:
            skipped["postgres"] = problem
            console.print(f"[yellow]skipping PostgreSQL: {problem}[/yellow]")

    chosen = args.scenario or list(SCENARIOS)
    load_at_start = os.getloadavg()
    figures: list[Figure] = []
    backends: dict[str, dict[str, str]] = {}
    for target in targets:
        backends[target.name] = target.describe()
        for name in chosen:
            console.print(f"[dim]{target.name}: {name} ({'quick' if args.quick else 'full'} sizes)...[/dim]")
            figures += SCENARIOS[name](target, args.quick)
            if args.json:  # after every scenario: a long run that fails later keeps what it measured
                write_json(document(figures, argv=argv, args={**vars(args), "json": str(args.json)},
                                    backends=backends, skipped=skipped, load_at_start=load_at_start), args.json)

    print_table(console, figures, f"storeflow benchmarks ({'quick' if args.quick else 'full'} sizes)")
    if args.json:
        doc = document(figures, argv=argv, args={**vars(args), "json": str(args.json)},
                       backends=backends, skipped=skipped, load_at_start=load_at_start)
        write_json(doc, args.json)
        console.print(f"wrote {args.json}")
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: temp files and PostgreSQL schemas are removed


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())

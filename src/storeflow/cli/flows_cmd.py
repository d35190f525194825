"""``storeflow flows ...``: validate, apply, list, show, steps, activate, pause, schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
import yaml

from storeflow.cli.context import CliError, state
from storeflow.cli.output import fmt_time, line, print_json, print_table, summarize_counts
from storeflow.errors import FlowValidationError

if TYPE_CHECKING:
    from storeflow.flows import FlowDefinition

FLOW_SUFFIXES = (".yaml", ".yml", ".json")

app = typer.Typer(help="Validate, apply and manage flows.", no_args_is_help=True)


class FlowStatusOption(StrEnum):
    live = "live"
    draft = "draft"
    paused = "paused"


Validator = Callable[[str, str], "FlowDefinition"]


@dataclass
class Checked:
    """One flow file after validation: its flow, or every problem found in it."""

    path: str
    flow: FlowDefinition | None = None
    problems: list[str] = field(default_factory=list)


def expand_paths(paths: Sequence[Path]) -> list[tuple[str, Path | None, str | None]]:
    """Files to read: each FILE as given, each DIR's *.yaml, *.yml and *.json (sorted, not recursive).
    Returns (shown name, path or None, problem or None)."""
    out: list[tuple[str, Path | None, str | None]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FLOW_SUFFIXES)
            if not files:
                out.append((str(path), None, f"{path}: no flow files (*.yaml, *.yml, *.json) in this directory"))
            out.extend((str(f), f, None) for f in files)
        else:
            out.append((str(path), path, None))
    return out


def check_files(paths: Sequence[Path], validate: Validator) -> list[Checked]:
    """Validate every file; collect all problems of all files (never stops at the first)."""
    checked: list[Checked] = []
    for shown, path, problem in expand_paths(paths):
        item = Checked(shown)
        checked.append(item)
        if problem is not None or path is None:
            item.problems.append(problem or f"{shown}: not a file")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            item.problems.append(f"{shown}: not UTF-8 text")
            continue
        except OSError as exc:
            item.problems.append(f"{shown}: cannot read: {exc.strerror or exc}")
            continue
        try:
            item.flow = validate(text, shown)
        except FlowValidationError as exc:
            item.problems.extend(_one_line(p.format(shown)) for p in exc.problems)
            if not exc.problems:
                item.problems.append(f"{shown}: {exc}")
        except RecursionError:  # a safety net: the loader bounds nesting, so this means a bug there
            item.problems.append(f"{shown}: nested too deeply to read; flatten the flow")
    _check_unique_ids(checked)
    return checked


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_unique_ids(checked: list[Checked]) -> None:
    first: dict[str, str] = {}
    for item in checked:
        if item.flow is None:
            continue
        other = first.setdefault(item.flow.id, item.path)
        if other != item.path:
            item.problems.append(f"{item.path}: id: flow id {item.flow.id!r} is also used by {other}; "
                                 "each flow needs its own id")
            item.flow = None


def _report_problems(checked: list[Checked], *, ok_lines: bool) -> int:
    bad = 0
    for item in checked:
        if item.problems:
            bad += 1
            for problem in item.problems:
                line(problem, style="red")
        elif ok_lines and item.flow is not None:
            steps = len(item.flow.steps)
            line(f"ok  {item.path}  ({item.flow.id}, {steps} step{'s' if steps != 1 else ''})", style="green")
    return bad


def _validator(ctx: typer.Context) -> Validator:
    """load_flow with the webhook rules of the settings (read from the environment and config file;
    no database is opened)."""
    from storeflow.flows import load_flow
    from storeflow.flows.destinations import DestinationPolicy

    destinations = DestinationPolicy.from_settings(state(ctx).settings())

    def load(text: str, source: str) -> FlowDefinition:
        return load_flow(text, source=source, destinations=destinations)

    return load


def _problem_count(checked: list[Checked]) -> int:
    return sum(len(item.problems) for item in checked)


@app.command("validate")
def validate(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(metavar="FILE_OR_DIR...", help="Flow files (YAML or JSON) or dirs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check flow files and list every problem of every file (exit 1 if any is invalid).

    Needs no database: use it in CI.
    """
    checked = check_files(files, _validator(ctx))
    bad = sum(1 for item in checked if item.problems)
    if as_json:
        print_json([{"file": c.path, "ok": not c.problems, "flow_id": c.flow.id if c.flow else None,
                     "problems": c.problems} for c in checked])
    else:
        _report_problems(checked, ok_lines=True)
    if bad:
        verb = "is" if bad == 1 else "are"
        raise CliError(f"{bad} of {len(checked)} flow files {verb} invalid ({_problem_count(checked)} problems)")


@app.command("apply")
def apply(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(metavar="FILE_OR_DIR...", help="Flow files or directories.")],
    status: Annotated[FlowStatusOption | None, typer.Option(
        help="Status for the applied flows [default: each file's status; a changed flow keeps its status].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate all files, then store each flow (a new version if it changed). Applies none if any
    file is invalid."""
    with state(ctx).open() as sf:
        checked = check_files(paths, sf.flows.validate)
        bad = sum(1 for item in checked if item.problems)
        if bad:
            _report_problems(checked, ok_lines=False)
            raise CliError(f"nothing applied: {bad} of {len(checked)} flow files invalid "
                           f"({_problem_count(checked)} problems)")
        results = []
        for item in checked:
            assert item.flow is not None
            results.append((item, sf.flows.apply(item.flow, status.value if status else None)))
    if as_json:
        print_json([{"file": item.path, **result.as_json()} for item, result in results])
        return
    print_table(["flow", "version", "change", "status", "file"],
                [(r.flow_id, r.version, r.change.replace("_", " "), r.status, item.path) for item, r in results])


def _trigger_text(flow: dict[str, Any]) -> str:
    kind = flow.get("trigger_kind") or "-"
    event = flow.get("trigger_event")
    return f"{kind}: {event}" if event else str(kind)


@app.command("list")
def list_flows(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the flows as JSON.")] = False,
) -> None:
    """List the flows with their status, version and run counts."""
    with state(ctx).open() as sf:
        flows = sf.flows.list()
        tz = sf.settings.tz
    if as_json:
        print_json(flows)
        return
    print_table(["flow", "name", "status", "version", "trigger", "runs", "updated"],
                [(f["id"], f["name"], f["status"], f["current_version"], _trigger_text(f),
                  summarize_counts(f.get("runs") or {}), fmt_time(f.get("updated_at"), tz)) for f in flows],
                empty="No flows yet. Add some with: storeflow flows apply FILE_OR_DIR")


@app.command("show")
def show(
    ctx: typer.Context,
    flow_id: Annotated[str, typer.Argument(metavar="ID", help="The flow's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the flow as JSON.")] = False,
) -> None:
    """Show a flow: its current definition as YAML, its versions and its run counts."""
    with state(ctx).open() as sf:
        flow = sf.flows.get(flow_id)
        tz = sf.settings.tz
    if as_json:
        print_json(flow)
        return
    line(f"{flow['id']}: {flow['name']}")
    line(f"status {flow['status']}, version {flow['current_version']}, trigger {_trigger_text(flow)}")
    line(f"runs: {summarize_counts(flow.get('runs') or {})}")
    line()
    print_table(["version", "created", "digest"],
                [(v["version"], fmt_time(v.get("created_at"), tz), str(v.get("digest", ""))[:12])
                 for v in flow.get("versions") or []], title="Versions")
    line()
    line(f"Definition (version {flow['current_version']}):")
    definition = flow.get("definition")
    text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, default_flow_style=False)
    typer.echo(text.rstrip("\n"))


@app.command("steps")
def steps(
    ctx: typer.Context,
    flow_id: Annotated[str, typer.Argument(metavar="ID", help="The flow's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Per-step statistics by step id, over every version: runs that reached each step, its log
    entries, runs waiting there now, and the messages it made."""
    with state(ctx).open() as sf:
        stats = sf.views.flow_steps(flow_id)
    if as_json:
        print_json(stats)
        return
    print_table(["step", "path", "kind", "runs", "waiting", "log", "messages"],
                [(s["id"], s["path"] or "(older versions)", s.get("action") or s["kind"], s["runs"], s["waiting"],
                  summarize_counts(s["log"]), summarize_counts(s["messages"])) for s in stats["steps"]],
                title=f"{flow_id}, version {stats['version']}")


def _set_status(ctx: typer.Context, flow_id: str, status: Literal["live", "paused"]) -> None:
    with state(ctx).open() as sf:
        result = sf.flows.set_status(flow_id, status)
    line(f"{result.flow_id} is now {result.status} (version {result.version})")


@app.command("activate")
def activate(ctx: typer.Context, flow_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Make a flow live: new events start runs and waiting runs continue."""
    _set_status(ctx, flow_id, "live")


@app.command("pause")
def pause(ctx: typer.Context, flow_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Pause a flow: no new runs start and running ones hold until it is activated again."""
    _set_status(ctx, flow_id, "paused")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of flow documents (for editors and CI)."""
    from storeflow.flows import flow_json_schema

    print_json(flow_json_schema())

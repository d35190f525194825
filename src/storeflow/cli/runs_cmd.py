"""``storeflow runs list`` and ``storeflow runs show RUN_ID`` (a run step by step)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Annotated, Any

import typer

from storeflow.cli.context import state
from storeflow.cli.output import compact_json, fmt_time, line, print_json, print_table

app = typer.Typer(help="Inspect flow runs.", no_args_is_help=True)

_DETAIL_MAX = 160


@app.command("list")
def list_runs(
    ctx: typer.Context,
    flow: Annotated[str | None, typer.Option("--flow", metavar="ID", help="Only runs of this flow.")] = None,
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", help="Only runs with this status (active, waiting, completed, exited, failed).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", metavar="ID", help="Only runs of this profile.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many runs, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """List runs, newest first."""
    with state(ctx).open() as sf:
        runs = sf.views.runs(flow_id=flow, status=status, profile_id=profile, limit=limit)
        tz = sf.settings.tz
    if as_json:
        print_json(runs)
        return
    print_table(["run", "flow", "version", "profile", "status", "started", "next / ended"],
                [(r["id"], r["flow_id"], r["flow_version"], r.get("profile_id"), r["status"],
                  fmt_time(r.get("started_at"), tz), _next_or_end(r, tz)) for r in runs],
                empty="No runs match.")


def _next_or_end(run: dict[str, Any], tz: tzinfo) -> str:
    if run.get("ended_at"):
        return fmt_time(run["ended_at"], tz)
    if run.get("due_at"):
        return f"due {fmt_time(run['due_at'], tz)}"
    return "-"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def step_detail(step: dict[str, Any], tz: tzinfo) -> str:
    """What a step did or why it stopped, in a few words."""
    detail = dict(step.get("detail") or {})
    parts: list[str] = []
    why = detail.pop("why", None)
    if why:
        parts.append(str(why))
    if detail.get("until"):
        parts.append(f"until {fmt_time(detail.pop('until'), tz)}")
    detail.pop("message_key", None)
    detail.pop("seed", None)
    for key, value in detail.items():
        if value is None:
            continue
        shown = value if isinstance(value, str) else compact_json(value)
        parts.append(f"{key}={shown}")
    delivery = step.get("delivery")
    if delivery:
        attempts = delivery.get("attempts") or 0
        text = f"delivery {delivery.get('status')} after {attempts} attempt{'s' if attempts != 1 else ''}"
        if delivery.get("last_error"):
            text += f": {delivery['last_error']}"
        parts.append(text)
    return _shorten("; ".join(parts)) or "-"


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Show a run step by step, then its messages with their delivery status and attempts."""
    with state(ctx).open() as sf:
        run = sf.views.run(run_id)
        tz = sf.settings.tz
    if as_json:
        print_json(run)
        return
    line(f"run {run['id']}: flow {run['flow_id']} v{run['flow_version']}, profile {run.get('profile_id') or '-'}")
    status = f"status {run['status']}, started {fmt_time(run.get('started_at'), tz)}"
    if run.get("ended_at"):
        status += f", ended {fmt_time(run['ended_at'], tz)}"
    elif run.get("due_at"):
        status += f", next step due {fmt_time(run['due_at'], tz)}"
    line(status)
    if run.get("exit_reason"):
        line(f"exit reason: {run['exit_reason']}")
    if run.get("last_error"):
        line(f"last error: {run['last_error']}", style="red")
    line()
    print_table(["seq", "time", "step", "kind", "status", "detail"],
                [(s["seq"], fmt_time(s.get("at"), tz), s.get("step_key"), s.get("kind"), s.get("status"),
                  step_detail(s, tz)) for s in run.get("steps") or []],
                title="Steps", empty="No steps yet.")
    messages = run.get("messages") or []
    if messages:
        line()
        print_table(["message", "channel", "step", "status", "attempts", "sent", "last error"],
                    [(m["id"], m.get("channel"), m.get("step_key"), m.get("status"), m.get("attempts"),
                      fmt_time(m.get("sent_at"), tz), _shorten(str(m.get("last_error") or "-")))
                     for m in messages],
                    title="Messages")

"""``storeflow events send`` (one event) and ``storeflow events import`` (a JSONL or CSV file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from storeflow.cli.context import CliError, state
from storeflow.cli.importing import Record, count_records, guess_format, read_records
from storeflow.cli.output import console, line, print_json, print_table

if TYPE_CHECKING:
    from storeflow.app import DrainStats, Storeflow

MAX_BATCH = 1000
SHOWN_REJECTED = 20

app = typer.Typer(help="Send events and import event files.", no_args_is_help=True)


class ImportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _parse_value(text: str) -> Any:
    """``key=VALUE``: VALUE as JSON when it is JSON (numbers, true, null, [..], {..}), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_properties(pairs: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--property")
        props[key.strip()] = _parse_value(value)
    return props


def _print_drain(stats: DrainStats) -> None:
    line(f"processed: {stats.runs} run(s), {stats.steps} step(s), {stats.messages} message(s)")


@app.command("send")
def send(
    ctx: typer.Context,
    event_type: Annotated[str | None, typer.Option("--type", metavar="TYPE",
                                                   help="Event type, e.g. checkout_started.")] = None,
    email: Annotated[str | None, typer.Option(help="The customer's email.")] = None,
    phone: Annotated[str | None, typer.Option(help="The customer's phone number.")] = None,
    customer_id: Annotated[str | None, typer.Option(help="The customer's id in your store.")] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="Idempotency key: resending it is a no-op.")] = None,
    properties: Annotated[list[str] | None, typer.Option(
        "--property", "-p", metavar="KEY=VALUE",
        help="An event property (repeatable). VALUE is read as JSON if it is JSON, else as text.")] = None,
    json_body: Annotated[str | None, typer.Option(
        "--json-body", metavar="JSON", help="The whole event as a JSON object; the options above override it.")] = None,
    source: Annotated[str, typer.Option(help="Source recorded with the event.")] = "cli",
    process: Annotated[bool, typer.Option("--process", help="Run due steps after sending.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send one event, e.g. storeflow events send --type checkout_started --email ana@example.com -p total=120000"""
    event: dict[str, Any] = {}
    if json_body is not None:
        try:
            body = json.loads(json_body)
        except ValueError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--json-body") from exc
        if not isinstance(body, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--json-body")
        event.update(body)
    for key, value in (("type", event_type), ("email", email), ("phone", phone),
                       ("customer_id", customer_id), ("id", event_id)):
        if value is not None:
            event[key] = value
    if properties:
        base = event.get("properties")
        event["properties"] = {**(base if isinstance(base, dict) else {}), **parse_properties(properties)}
    if "type" not in event and "event" not in event:
        raise typer.BadParameter("give the event type with --type or in --json-body", param_hint="--type")
    with state(ctx).open() as sf:
        result = sf.ingest([event], source)[0]
        if result.status == "rejected":
            raise CliError(f"event rejected: {result.error}")
        stats = sf.drain() if process else None
    if as_json:
        out = result.as_json()
        if stats is not None:
            out["processed"] = {"runs": stats.runs, "steps": stats.steps, "messages": stats.messages}
        print_json(out)
        return
    if result.status == "duplicate":
        line("duplicate: this event was already received; nothing changed")
    else:
        line(f"{result.status}: event {result.event_id or '-'}, profile {result.profile_id or '-'}")
    if result.runs_started:
        line(f"runs started: {', '.join(result.runs_started)}")
    if stats is not None:
        _print_drain(stats)


@dataclass
class ImportSummary:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    runs_started: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"records": self.lines, "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": len(self.rejected), "runs_started": self.runs_started,
                "errors": [{"line": n, "error": e} for n, e in self.rejected]}


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_records(sf: Storeflow, records: Iterator[Record], source: str, batch_size: int,
                   progress: Progress, task: Any) -> ImportSummary:
    summary = ImportSummary()
    for batch in _batches(records, batch_size):
        summary.lines += len(batch)
        good = [r for r in batch if r.event is not None]
        for r in batch:
            if r.event is None:
                summary.rejected.append((r.line, r.error or "invalid"))
        results = sf.ingest([r.event for r in good if r.event is not None], source) if good else []
        for result in results:
            record = good[result.index]
            if result.status == "accepted":
                summary.accepted += 1
                summary.runs_started += len(result.runs_started)
            elif result.status == "duplicate":
                summary.duplicates += 1
            else:
                summary.rejected.append((record.line, result.error or "rejected"))
        progress.update(task, completed=batch[-1].line)
    summary.rejected.sort()
    return summary


@app.command("import")
def import_events(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A .jsonl or .csv file of events.")],
    fmt: Annotated[ImportFormat | None, typer.Option(
        "--format", help="File format [default: from the extension]")] = None,
    source: Annotated[str, typer.Option(help="Source recorded with the events.")] = "import",
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Events per transaction.")] = MAX_BATCH,
    process: Annotated[bool, typer.Option("--process", help="Run due steps after importing.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any line is rejected.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import events from JSONL (one event object per line) or CSV (type, id, occurred_at, email,
    phone, customer_id, anonymous_id, properties.<name>, profile.<name> columns)."""
    kind = guess_format(file, fmt.value if fmt else None)
    err = console(stderr=True)
    with state(ctx).open() as sf:
        total = count_records(file) if err.is_terminal else None
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with file.open(encoding="utf-8-sig", newline="") as handle, \
                Progress(*columns, console=err, disable=not err.is_terminal, transient=True) as progress:
            task = progress.add_task("import", total=total)
            try:
                summary = import_records(sf, read_records(handle, kind), source, batch_size, progress, task)
            except UnicodeDecodeError as exc:
                raise CliError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        stats = sf.drain() if process else None
    if as_json:
        out = summary.as_json()
        if stats is not None:
            out["processed"] = {"runs": stats.runs, "steps": stats.steps, "messages": stats.messages}
        print_json(out)
    else:
        _print_summary(file, summary)
        if stats is not None:
            _print_drain(stats)
    if strict and summary.rejected:
        raise CliError(f"{len(summary.rejected)} line(s) rejected (--strict)")


def _print_summary(file: Path, summary: ImportSummary) -> None:
    rejected = len(summary.rejected)
    line(f"{file}: {summary.lines} records: accepted {summary.accepted}, duplicates {summary.duplicates}, "
         f"rejected {rejected}" + (f"; {summary.runs_started} run(s) started" if summary.runs_started else ""))
    if not rejected:
        return
    shown = summary.rejected[:SHOWN_REJECTED]
    title = "Rejected lines" if rejected <= SHOWN_REJECTED else f"Rejected lines (first {SHOWN_REJECTED} of {rejected})"
    print_table(["line", "reason"], [(n, e) for n, e in shown], title=title)

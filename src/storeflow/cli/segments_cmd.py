"""``storeflow segments ...``: validate, apply, list, show, preview, members, export, delete, schema."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from storeflow.cli.context import CliError, state
from storeflow.cli.flows_cmd import expand_paths
from storeflow.cli.output import fmt_time, line, print_json, print_table, warn
from storeflow.errors import SegmentValidationError

if TYPE_CHECKING:
    from storeflow.segments import SegmentDefinition

app = typer.Typer(help="Validate, apply and inspect segments (audiences kept current).", no_args_is_help=True)


@dataclass
class Checked:
    """One segment file after validation: its segment, or every problem found in it."""

    path: str
    segment: SegmentDefinition | None = None
    problems: list[str] = field(default_factory=list)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def check_files(paths: Sequence[Path]) -> list[Checked]:
    """Load every file (FILEs, and DIRs' *.yaml, *.yml, *.json); collect all problems of all files,
    and refuse two files with one segment id."""
    from storeflow.segments import load_segment

    checked: list[Checked] = []
    for shown, path, problem in expand_paths(paths):
        item = Checked(shown)
        checked.append(item)
        if problem is not None or path is None:
            item.problems.append((problem or f"{shown}: not a file").replace("no flow files", "no segment files"))
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
            item.segment = load_segment(text, source=shown)
        except SegmentValidationError as exc:
            item.problems.extend(_one_line(p.format(shown)) for p in exc.problems)
    first: dict[str, str] = {}
    for item in checked:
        if item.segment is None:
            continue
        other = first.setdefault(item.segment.id, item.path)
        if other != item.path:
            item.problems.append(f"{item.path}: id: segment id {item.segment.id!r} is also used by {other}; "
                                 "each segment needs its own id")
            item.segment = None
    return checked


def _check_references(checked: list[Checked], known: dict[str, dict[str, Any]] | None) -> list[str]:
    """Reference problems (unknown segments, cycles) of the loaded files against ``known`` (stored
    segments) plus the files themselves; with ``known`` None, references to segments outside the
    files are returned as notes instead of problems."""
    from storeflow.service.segments import check_references

    loaded = {item.segment.id: item.segment.to_document() for item in checked if item.segment is not None}
    everything = {**(known or {}), **loaded}
    notes: list[str] = []
    for item in checked:
        if item.segment is None:
            continue
        base = everything
        if known is None:
            from storeflow.segments import referenced_segments

            outside = sorted(referenced_segments(item.segment) - set(loaded))
            notes += [f"{item.path}: refers to segment {ref!r}, not among these files; apply checks it against "
                      "the store" for ref in outside]
            base = {**everything, **{ref: {} for ref in outside}}
        try:
            check_references(item.segment, base, item.path)
        except SegmentValidationError as exc:
            item.problems.extend(_one_line(p.format(item.path)) for p in exc.problems)
            item.segment = None
    return notes


def _report(checked: list[Checked], *, ok_lines: bool) -> int:
    bad = 0
    for item in checked:
        if item.problems:
            bad += 1
            for problem in item.problems:
                line(problem, style="red")
        elif ok_lines and item.segment is not None:
            line(f"ok  {item.path}  ({item.segment.id})", style="green")
    return bad


def _problem_count(checked: list[Checked]) -> int:
    return sum(len(item.problems) for item in checked)


@app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE_OR_DIR...",
                                                help="Segment files (YAML or JSON) or dirs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check segment files and list every problem of every file (exit 1 if any is invalid).

    References (in_segment) are checked among the files given; a reference to a segment outside
    them is noted, and checked against the store by `apply`. Needs no database: use it in CI.
    """
    checked = check_files(files)
    notes = _check_references(checked, None)
    bad = sum(1 for item in checked if item.problems)
    if as_json:
        print_json([{"file": c.path, "ok": not c.problems, "segment_id": c.segment.id if c.segment else None,
                     "problems": c.problems} for c in checked])
    else:
        _report(checked, ok_lines=True)
        for note in notes:
            warn(note)
    if bad:
        verb = "is" if bad == 1 else "are"
        raise CliError(f"{bad} of {len(checked)} segment files {verb} invalid ({_problem_count(checked)} problems)")


@app.command("apply")
def apply(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(metavar="FILE_OR_DIR...", help="Segment files or directories.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate all files, then store each segment (a new version if it changed).

    A new version is computed again in full. Applies none if any file is invalid or refers to an
    unknown segment; files referring to each other are stored in dependency order."""
    checked = check_files(paths)
    with state(ctx).open() as sf:
        with sf.store.read() as tx:
            known = tx.live_segment_definitions()
        _check_references(checked, known)
        bad = sum(1 for item in checked if item.problems)
        if bad:
            _report(checked, ok_lines=False)
            raise CliError(f"nothing applied: {bad} of {len(checked)} segment files invalid "
                           f"({_problem_count(checked)} problems)")
        segments = [item.segment for item in checked if item.segment is not None]
        results = sf.segments.apply_all(segments, [item.path for item in checked])
    if as_json:
        print_json([{"file": item.path, **r.as_json()} for item, r in zip(checked, results, strict=True)])
        return
    print_table(["segment", "version", "change", "file"],
                [(r.segment_id, r.version, r.change.replace("_", " "), item.path)
                 for item, r in zip(checked, results, strict=True)])


def _computed(segment: dict[str, Any], tz: Any) -> str:
    if segment.get("computed_version") is None:
        return "computing"
    text = f"v{segment['computed_version']}"
    return f"{text} at {fmt_time(segment.get('computed_at'), tz)}"


@app.command("list")
def list_segments(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the segments as JSON.")] = False,
) -> None:
    """List the segments with their member counts, versions and computation state."""
    with state(ctx).open() as sf:
        segments = sf.segments.list()
        tz = sf.settings.tz
    if as_json:
        print_json(segments)
        return
    print_table(["segment", "name", "members", "version", "computed", "updated"],
                [(s["id"], s["name"], s["member_count"], s["current_version"], _computed(s, tz),
                  fmt_time(s.get("updated_at"), tz)) for s in segments],
                empty="No segments yet. Add some with: storeflow segments apply FILE_OR_DIR")


@app.command("show")
def show(
    ctx: typer.Context,
    segment_id: Annotated[str, typer.Argument(metavar="ID", help="The segment's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the segment as JSON.")] = False,
) -> None:
    """Show a segment: its member count, versions and current definition as YAML."""
    with state(ctx).open() as sf:
        segment = sf.segments.get(segment_id)
        tz = sf.settings.tz
    if as_json:
        print_json(segment)
        return
    line(f"{segment['id']}: {segment['name']}")
    line(f"version {segment['current_version']}, {segment['member_count']} members, "
         f"computed: {_computed(segment, tz)}")
    line()
    print_table(["version", "created", "digest"],
                [(v["version"], fmt_time(v.get("created_at"), tz), str(v.get("digest", ""))[:12])
                 for v in segment.get("versions") or []], title="Versions")
    line()
    line(f"Definition (version {segment['current_version']}):")
    text = yaml.safe_dump(segment.get("definition"), sort_keys=False, allow_unicode=True, default_flow_style=False)
    typer.echo(text.rstrip("\n"))


@app.command("preview")
def preview(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="FILE|ID", help="A segment file, or a stored segment's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the preview as JSON.")] = False,
) -> None:
    """Count the profiles a segment holds now, with a sample; writes nothing.

    FILE previews the document (before applying it), ID a stored segment."""
    path = Path(target)
    with state(ctx).open() as sf:
        if path.is_file():
            checked = check_files([path])
            if checked[0].problems or checked[0].segment is None:
                _report(checked, ok_lines=False)
                raise CliError(f"{target} is invalid ({_problem_count(checked)} problems)")
            result = sf.segments.preview(checked[0].segment)
        else:
            result = sf.segments.preview(target)
        tz = sf.settings.tz
    if as_json:
        print_json(result)
        return
    count = result["count"]
    line(f"{result['segment_id']}: {count} profile{'s' if count != 1 else ''} now ({fmt_time(result['at'], tz)})")
    for text in result["warnings"]:
        warn(f"warning: {text}")
    if result["sample"]:
        print_table(["profile", "email"], [(r["profile_id"], r.get("email")) for r in result["sample"]],
                    title="Sample")


@app.command("members")
def members(
    ctx: typer.Context,
    segment_id: Annotated[str, typer.Argument(metavar="ID", help="The segment's id.")],
    after: Annotated[str | None, typer.Option(help="Start after this profile id (the previous page's next).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Members per page.")] = 100,
    at: Annotated[datetime | None, typer.Option(
        help="The members at this instant (ISO 8601; without a zone, the store's time zone).",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"])] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """A page of the segment's members by profile id, with when they entered.

    With --at, the members at that instant, from the membership history."""
    with state(ctx).open() as sf:
        tz = sf.settings.tz
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=tz)
        page = sf.segments.members(segment_id, after=after, limit=limit, at=at)
    if as_json:
        print_json(page)
        return
    title = f"{segment_id}" + (f" at {fmt_time(at, tz)}" if at is not None else "")
    print_table(["profile", "email", "phone", "entered"],
                [(m["profile_id"], m.get("email"), m.get("phone"), fmt_time(m.get("entered_at"), tz))
                 for m in page["members"]], title=title, empty=f"{title}: no members")
    if page["next"]:
        line(f"more: storeflow segments members {segment_id} --after {page['next']}")


@app.command("export")
def export(
    ctx: typer.Context,
    segment_id: Annotated[str, typer.Argument(metavar="ID", help="The segment's id.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the CSV here (default: stdout).")] = None,
) -> None:
    """Export the current members as CSV (profile_id, email, phone, entered_at), a page at a time."""
    with state(ctx).open() as sf:
        chunks = sf.segments.export_csv(segment_id)
        if out is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return
        rows = -1
        tmp = out.with_name(out.name + ".part")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
                rows += chunk.count("\r\n")
        tmp.replace(out)
    line(f"{max(rows, 0)} members of {segment_id} written to {out}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    segment_id: Annotated[str, typer.Argument(metavar="ID", help="The segment's id.")],
) -> None:
    """Delete a segment: its members are removed, its history kept.

    Refused while a live flow, a campaign to send or another segment uses it."""
    with state(ctx).open() as sf:
        result = sf.segments.delete(segment_id)
    line(f"{segment_id} deleted ({result['members_removed']} members removed)")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of segment documents (for editors and CI)."""
    from storeflow.segments.schema import segment_json_schema

    print_json(segment_json_schema())

"""``storeflow segments templates list|show|install``: the built-in segments (RFM cells, lifecycle
stages, engagement, behaviour), shipped as editable segment documents (storeflow.segments.builtin)."""

from __future__ import annotations

from typing import Annotated

import typer

from storeflow.cli.context import state
from storeflow.cli.output import line, print_json, print_table

app = typer.Typer(help="The built-in segments: list them, show one's document, install them.",
                  no_args_is_help=True)


def _short(text: str, width: int = 72) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


@app.command("list")
def list_templates(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the templates as JSON.")] = False,
) -> None:
    """List the built-in segment templates by group, and whether each is installed."""
    from storeflow.segments.builtin import templates

    with state(ctx).open() as sf:
        installed = {s["id"] for s in sf.segments.list()}
    rows = [{"name": t.name, "group": t.group, "segment": t.segment.name, "installed": t.name in installed,
             "description": t.segment.description or ""} for t in templates()]
    if as_json:
        print_json(rows)
        return
    print_table(["template", "group", "name", "installed", "description"],
                [(r["name"], r["group"], r["segment"], "yes" if r["installed"] else "",
                  _short(str(r["description"]))) for r in rows])
    line()
    line("Install with: storeflow segments templates install NAME... (a template, a group, or all)")


@app.command("show")
def show(name: Annotated[str, typer.Argument(metavar="NAME", help="The template's name.")]) -> None:
    """Print a template's document (YAML): save it, edit it, apply it with `storeflow segments apply`."""
    from storeflow.segments.builtin import template

    typer.echo(template(name).text.rstrip("\n"))


@app.command("install")
def install(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(
        metavar="NAME...", help="Templates, groups (rfm, lifecycle, engagement, behaviour) or all.")],
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Apply the shipped document over an installed segment of the same id (your edits "
                            "become an older version).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Install built-in segments as the store's own (with the templates they refer to). Installed
    segments are left as they are unless --overwrite. The membership engine computes new ones in full."""
    from storeflow.segments.builtin import resolve

    chosen = resolve(names)
    with state(ctx).open() as sf:
        installed = {s["id"] for s in sf.segments.list()}
        todo = [t for t in chosen if overwrite or t.name not in installed]
        results = {r.segment_id: r for r in sf.segments.apply_all(
            [t.segment for t in todo], [f"segments/templates/{t.name}.yaml" for t in todo])} if todo else {}
    rows = [{"template": t.name, "segment_id": t.segment.id,
             "change": results[t.name].change if t.name in results else "kept",
             "version": results[t.name].version if t.name in results else None} for t in chosen]
    if as_json:
        print_json(rows)
        return
    print_table(["template", "change", "version"],
                [(r["template"], str(r["change"]).replace("_", " "), r["version"] or "") for r in rows])
    if any(r["change"] == "kept" for r in rows):
        line("kept: already installed (use --overwrite to apply the shipped document over it)")

"""Terminal output for the CLI: tables, plain lines, JSON for scripts, and the one-line error.

Rich is used for tables and the progress bar only. Text that comes from users or the database is
never parsed as Rich markup. When stdout is not a terminal, tables are not squeezed to 80 columns,
so output piped to a file or to ``grep`` keeps one record per line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

_PIPE_WIDTH = 10_000


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr); wide when not a terminal."""
    probe = Console(stderr=stderr, highlight=False)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, highlight=False, width=_PIPE_WIDTH)


def line(text: str = "", *, style: str | None = None, err: bool = False) -> None:
    """One plain line; colored only on a terminal, never wrapped."""
    if style:
        typer.secho(text, fg=style, err=err)
    else:
        typer.echo(text, err=err)


def warn(text: str) -> None:
    line(text, style="yellow", err=True)


def error_line(message: str) -> None:
    """The CLI's error report: one red line on stderr."""
    line(f"error: {one_line(message)}", style="red", err=True)


def one_line(message: str) -> str:
    """Collapse a multi-line message into one line."""
    parts = [p.strip() for p in str(message).splitlines()]
    return "; ".join(p for p in parts if p) or "unknown error"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, default=_json_default, ensure_ascii=False, indent=2)


def print_json(data: Any) -> None:
    typer.echo(to_json(data))


def compact_json(data: Any) -> str:
    return json.dumps(data, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def fmt_time(value: Any, tz: tzinfo | None = None) -> str:
    """A stored time in the store's time zone, to the second; '-' for none."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if tz is not None and value.tzinfo is not None:
            value = value.astimezone(tz)
        stamp = value.strftime("%Y-%m-%d %H:%M:%S")
        zone = value.strftime("%Z")
        return f"{stamp} {zone}" if zone else stamp
    return str(value)


def cell(value: Any) -> Text:
    """A table cell that is never interpreted as markup."""
    if value is None:
        return Text("-")
    if isinstance(value, Text):
        return value
    return Text(str(value))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
                empty: str | None = None) -> None:
    rows = list(rows)
    if not rows and empty is not None:
        line(empty)
        return
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console().print(table)


def summarize_counts(counts: Mapping[str, int]) -> str:
    """``{"completed": 3, "waiting": 1}`` -> ``completed 3, waiting 1``; ``-`` when empty."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"

"""Reading event files for ``storeflow events import``: JSONL (one event object per line) or CSV.

Each record comes out with its 1-based line number, either as an event object or as the reason it
cannot be one (a line that is not JSON is a rejected line, not a crash).

CSV columns: ``type, id, occurred_at, email, phone, customer_id, anonymous_id, profile_id, source``,
``properties.<name>`` (into ``properties``) and ``profile.<name>`` (into ``profile``). Empty cells are
left out. Cells stay text; storeflow reads amounts from text ("19.90").
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from storeflow.cli.context import CliError

Format = Literal["jsonl", "csv"]
CSV_FIELDS = ("type", "id", "occurred_at", "email", "phone", "customer_id", "anonymous_id", "profile_id", "source")
_NESTED = ("properties.", "profile.")


@dataclass(frozen=True)
class Record:
    line: int
    event: dict[str, Any] | None = None
    error: str | None = None


def guess_format(path: Path, given: Format | None) -> Format:
    if given is not None:
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise CliError(f"{path}: cannot tell the format from the extension; use --format jsonl or --format csv")


def count_records(path: Path) -> int:
    """Lines in the file (an upper bound of the records, for the progress bar)."""
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


def read_records(handle: IO[str], fmt: Format) -> Iterator[Record]:
    return read_jsonl(handle) if fmt == "jsonl" else read_csv(handle)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_jsonl(handle: IO[str]) -> Iterator[Record]:
    for number, raw in enumerate(handle, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            yield Record(number, error=f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except ValueError as exc:
            yield Record(number, error=f"not valid JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield Record(number, error=f"expected an event object, got {_json_type(value)}")
            continue
        yield Record(number, event=value)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _check_header(header: list[str]) -> list[str]:
    names = [h.strip() for h in header]
    unknown = [n for n in names if n not in CSV_FIELDS and not (n.startswith(_NESTED) and "." in n
                                                                  and n.split(".", 1)[1])]
    if unknown:
        raise CliError(f"unknown CSV column(s) {', '.join(repr(u) for u in unknown)}; use "
                       f"{', '.join(CSV_FIELDS)}, properties.<name> or profile.<name>")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CliError(f"CSV column {name!r} appears twice")
        seen.add(name)
    if "type" not in seen:
        raise CliError("the CSV needs a 'type' column (the event type, e.g. order_placed)")
    return names


def read_csv(handle: IO[str]) -> Iterator[Record]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise CliError(f"line 1: the CSV header cannot be read: {exc}") from exc
    names = _check_header(header)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(start, error=f"not valid CSV: {exc}")
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            yield Record(start, error=f"{len(row)} cells but the header has {len(names)} columns")
            continue
        yield Record(start, event=_row_event(names, row))


def _row_event(names: list[str], row: list[str]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for name, value in zip(names, row, strict=False):
        if value == "":
            continue
        if name.startswith("properties."):
            event.setdefault("properties", {})[name.removeprefix("properties.")] = value
        elif name.startswith("profile."):
            event.setdefault("profile", {})[name.removeprefix("profile.")] = value
        else:
            event[name] = value
    return event

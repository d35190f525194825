"""Field paths such as ``profile.email`` or ``order.line_items.0.sku``, and how they resolve on records.

A path starts with a root (``event``, ``profile``, ``order``, ``cart``, ``product`` or ``run``; and
``message`` inside a ``messages`` collection's ``where``) and
continues with dict keys and list indexes separated by dots. Records are plain dicts. For ``event``
and ``profile``, a first key that is not a top-level key of the record is looked up in its
``properties`` dict, so ``profile.birthday`` means ``profile["properties"]["birthday"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from storeflow.flows.problems import Loc, Problems, type_name
from storeflow.flows.vocabulary import ALL_ROOTS, FIELD_ROOTS, FieldRoot, did_you_mean

SHORTHAND_ROOTS: Final[frozenset[str]] = frozenset({"event", "profile"})
"""Roots whose unknown top-level keys fall back to the record's ``properties`` dict."""

_SEGMENT = re.compile(r"[^\s.\[\]]+")
FIELD_PATH_PATTERN: Final = r"^(event|profile|order|cart|product|run|message)(\.[^\s.\[\]]+)*$"


class FieldPath(BaseModel):
    """A parsed field path: its root and the keys or list indexes after it (all as text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: FieldRoot
    segments: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ".".join((self.root, *self.segments))

    @property
    def text(self) -> str:
        return str(self)


class FieldPathError(ValueError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_field_path(text: object) -> FieldPath:
    """Parse ``"order.line_items.0.sku"``; raises FieldPathError (a ValueError) with a hint."""
    if not isinstance(text, str):
        raise FieldPathError(f"a field path must be text, not {type_name(text)}", "e.g. profile.email")
    if not text.strip():
        raise FieldPathError("a field path must not be empty", "e.g. profile.email")
    root, *segments = text.split(".")
    if root not in ALL_ROOTS:
        hint = did_you_mean(root, FIELD_ROOTS, cutoff=0.6) or "paths start with " + ", ".join(FIELD_ROOTS)
        raise FieldPathError(f'"{text}" does not start with a known root', hint)
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            hint = "write list indexes as keys, e.g. order.line_items.0.sku"
            if not segment:
                hint = "remove the empty part between dots"
            raise FieldPathError(f'"{text}" is not a valid field path', hint)
    return FieldPath(root=root, segments=tuple(segments))


def read_field_path(value: Any, loc: Loc, problems: Problems, roots: Sequence[str] = FIELD_ROOTS) -> FieldPath | None:
    """A field path from a document, or None after adding the problem. ``roots`` limits the roots."""
    try:
        path = parse_field_path(value)
    except FieldPathError as exc:
        problems.add(loc, exc.message, exc.hint)
        return None
    if path.root not in roots:
        allowed = " or ".join(f'"{root}."' for root in roots)
        problems.add(loc, f'"{value}" cannot be used here', f"fields here start with {allowed}")
        return None
    return path


def resolve(record: Mapping[str, Any], path: FieldPath) -> Any:
    """The value at ``path`` in ``record`` (a mapping of root name to record dict); None when missing."""
    current: Any = record.get(path.root)
    segments = path.segments
    if (
        segments
        and path.root in SHORTHAND_ROOTS
        and (type(current) is dict or isinstance(current, Mapping))
        and segments[0] not in current
        and isinstance(current.get("properties"), Mapping)
    ):
        current = current["properties"]
    for segment in segments:
        current = _step(current, segment)
        if current is None:
            return None
    return current


def _step(value: Any, segment: str) -> Any:
    if type(value) is dict:  # the common case, without the Mapping ABC's slower check
        return value.get(segment)
    if isinstance(value, Mapping):
        return value.get(segment)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        try:
            index = int(segment)
        except ValueError:
            return None
        if -len(value) <= index < len(value):
            return value[index]
    return None

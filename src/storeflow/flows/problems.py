"""Document locations (``steps[2].then[0]``) and the collector that gathers every problem in a document.

Parsers in this package never stop at the first problem: they add it to a :class:`Problems` collector
and keep reading, so a user sees everything that is wrong with a flow in one go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from storeflow.errors import Problem
from storeflow.flows.vocabulary import did_you_mean

Loc = tuple[str | int, ...]
"""A location in a document: keys and list indexes, e.g. ``("steps", 2, "then", 0)``."""

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LOC_TOKEN = re.compile(r'\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SLUG_HINT = "use lowercase letters, digits, - and _ (at most 64, starting with a letter or digit)"


def format_loc(loc: Sequence[str | int]) -> str:
    """``("steps", 2, "then", 0)`` -> ``"steps[2].then[0]"``."""
    out: list[str] = []
    for part in loc:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def parse_loc(text: str) -> Loc:
    """The inverse of :func:`format_loc`; raises ValueError on text that is not a location."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _LOC_TOKEN.match(text, pos)
        if match is None or (match.group(0).startswith(".") and not parts):
            raise ValueError(f"not a document path: {text!r}")
        key, index, quoted = match.groups()
        if key is not None:
            if parts and not match.group(0).startswith("."):
                raise ValueError(f"not a document path: {text!r}")
            parts.append(key)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(str(json.loads(quoted)))
        pos = match.end()
    return tuple(parts)


@dataclass
class Problems:
    """Collects problems as (location, message, hint, line) while a document is read."""

    items: list[tuple[Loc, str, str | None, int | None]] = field(default_factory=list)

    def add(self, loc: Loc, message: str, hint: str | None = None, *, line: int | None = None) -> None:
        """Add a problem at ``loc``; ``line`` overrides the line found from the document's line map."""
        self.items.append((tuple(loc), message, hint, line))

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def to_problems(self, lines: Mapping[Loc, int] | None = None) -> list[Problem]:
        """Problems with document paths and, when a line map is given, 1-based line numbers."""
        found: list[Problem] = []
        for loc, message, hint, known_line in self.items:
            line = known_line if known_line is not None else find_line(lines, loc) if lines else None
            found.append(Problem(path=format_loc(loc), message=message, hint=hint, line=line))
        # Stable: problems without a line keep their order after the ones with a line.
        return sorted(found, key=lambda p: (p.line is None, p.line or 0))


def find_line(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc`` or of its nearest ancestor present in the document."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


# --- reading raw documents -------------------------------------------------------------------


def type_name(value: Any) -> str:
    """How a user would describe the type of a parsed document value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def check_keys(
    data: Mapping[Any, Any],
    loc: Loc,
    problems: Problems,
    allowed: Collection[str],
    required: Collection[str] = (),
) -> bool:
    """Report unknown and missing keys; True when every required key is present."""
    for key in data:
        if not isinstance(key, str):
            problems.add(loc, f"keys must be text, not {type_name(key)}")
        elif key not in allowed:
            hint = did_you_mean(key, allowed) or "allowed keys: " + ", ".join(allowed)
            problems.add((*loc, key), f'unknown key "{key}"', hint)
    ok = True
    for key in required:
        if key not in data:
            problems.add(loc, f'missing required key "{key}"')
            ok = False
    return ok


def want_mapping(value: Any, loc: Loc, problems: Problems, what: str = "a mapping") -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    problems.add(loc, f"must be {what}, not {type_name(value)}")
    return None


def want_list(value: Any, loc: Loc, problems: Problems, what: str = "a list") -> list[Any] | None:
    if isinstance(value, list | tuple):
        return list(value)
    problems.add(loc, f"must be {what}, not {type_name(value)}")
    return None


def want_text(value: Any, loc: Loc, problems: Problems, what: str = "text") -> str | None:
    """A non-empty string."""
    if not isinstance(value, str):
        problems.add(loc, f"must be {what}, not {type_name(value)}")
        return None
    if not value.strip():
        problems.add(loc, "must not be empty")
        return None
    return value


def want_slug(value: Any, loc: Loc, problems: Problems) -> str | None:
    text = want_text(value, loc, problems)
    if text is None:
        return None
    if not SLUG.fullmatch(text):
        problems.add(loc, f'"{text}" is not a valid id', SLUG_HINT)
        return None
    return text


# --- pydantic errors, rewritten for humans ---------------------------------------------------


def custom_error(message: str, hint: str | None = None) -> PydanticCustomError:
    """Raise this from a pydantic validator to get ``message`` and ``hint`` into the Problem verbatim."""
    return PydanticCustomError("storeflow", "{message}", {"message": message, "hint": hint or ""})


_SIMPLE_MESSAGES = {
    "string_type": "must be text",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "string_too_short": "must not be empty",
    "invalid_key": "keys must be text",
}


def translate_error(error: ErrorDetails, known_keys: Collection[str] = ()) -> tuple[Loc, str, str | None]:
    """One pydantic error as (relative location, message, hint), without pydantic's wording or URLs."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "storeflow":
        return loc, str(ctx["message"]), str(ctx.get("hint") or "") or None
    if kind == "missing" and loc:
        return loc[:-1], f'missing required key "{loc[-1]}"', None
    if kind == "extra_forbidden" and loc:
        key = str(loc[-1])
        hint = did_you_mean(key, known_keys) if known_keys else None
        if hint is None and known_keys:
            hint = "allowed keys: " + ", ".join(sorted(known_keys))
        return loc, f'unknown key "{key}"', hint
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return loc, f"must be {expected}", None
    if kind in ("too_short", "too_long"):
        word = "at least" if kind == "too_short" else "at most"
        count = ctx.get("min_length" if kind == "too_short" else "max_length")
        return loc, f"must have {word} {count} item{'s' if count != 1 else ''}", None
    if kind == "string_too_long":
        return loc, f"is too long (at most {ctx.get('max_length')} characters)", None
    if kind in _SIMPLE_MESSAGES:
        return loc, _SIMPLE_MESSAGES[kind], None
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", error["msg"]))
        return loc, message, None
    message = error["msg"]
    return loc, message[:1].lower() + message[1:], None


def add_pydantic_errors(
    problems: Problems, loc: Loc, exc: PydanticValidationError, known_keys: Collection[str] = ()
) -> None:
    """Add every error of a pydantic validation failure under ``loc``."""
    for error in exc.errors(include_url=False):
        rel, message, hint = translate_error(error, known_keys)
        problems.add((*loc, *rel), message, hint)

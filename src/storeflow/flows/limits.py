"""Bounds on flow documents, so that a hostile or broken document is refused quickly, with its path.

Checked in this order, each before the work it protects:

1. the size of the text (:data:`MAX_DOCUMENT_BYTES`), before parsing;
2. nesting depth (:data:`MAX_DEPTH`): for JSON by a scan of the text before ``json.loads`` (which
   recurses), for YAML while the YAML nodes are composed (PyYAML's composer recurses);
3. YAML aliases: allowed (``<<: *defaults`` is handy), but the document *as expanded* may hold at
   most :data:`MAX_NODES` values. A "billion laughs" document of a few hundred bytes expands to
   10^9 values; it is refused while it is composed, before anything walks the expansion. An alias
   that refers to the mapping or list it is inside (a cycle) is refused;
4. the parsed data (:func:`check_shape`): the number of values, text lengths (keys, ids and names,
   other text), numbers with too many digits or not finite, the number of steps in the flow
   (:data:`MAX_STEPS`, nested ones included) and of variants in a split (:data:`MAX_VARIANTS`).

Templates have their own bounds (see ``storeflow.flows.templates``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from storeflow.flows.problems import Loc, Problems, format_loc

MAX_DOCUMENT_BYTES: Final = 1_000_000
"""Largest flow document, in bytes of UTF-8."""
MAX_DEPTH: Final = 64
"""Deepest nesting of mappings and lists (an ``if`` step inside another adds 2)."""
MAX_NODES: Final = 100_000
"""Most values (mappings, lists, keys and scalars) in a document, YAML aliases expanded."""
MAX_STEPS: Final = 500
"""Most steps in a flow, counting the steps inside if, wait_for and split."""
MAX_VARIANTS: Final = 20
"""Most variants (branches) of one split step."""
MAX_KEY_LENGTH: Final = 100
"""Longest mapping key, in characters."""
MAX_NAME_LENGTH: Final = 200
"""Longest ``id`` or ``name`` value, in characters (ids must also be slugs of at most 64)."""
MAX_TEXT_LENGTH: Final = 200_000
"""Longest other text (templates included), in characters."""
MAX_NUMBER_LENGTH: Final = 40
"""Most characters in a number as written (digits, sign, point, exponent)."""

_NAME_KEYS: Final = frozenset({"id", "name"})
_STEP_LIST_KEYS: Final = ("then", "else", "on_event", "on_timeout")
_JSON_TOKEN: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


@dataclass(frozen=True)
class LongNumber:
    """A number written with more than :data:`MAX_NUMBER_LENGTH` characters, kept as text so that
    the loader never converts it (Python refuses ints over 4,300 digits, and big ones are slow)."""

    text: str


class LimitExceeded(Exception):
    """A bound was exceeded while reading a document; the loader turns it into a problem."""

    def __init__(self, loc: Loc, message: str, hint: str | None = None, line: int | None = None) -> None:
        super().__init__(f"{format_loc(loc) or 'the document'}: {message}")
        self.loc, self.message, self.hint, self.line = loc, message, hint, line


def check_size(text: str) -> None:
    """Raise :class:`LimitExceeded` when ``text`` is over :data:`MAX_DOCUMENT_BYTES`."""
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise LimitExceeded(
            (), f"the document is larger than {MAX_DOCUMENT_BYTES:,} bytes", "split it into several flows"
        )


def depth_error(loc: Loc, line: int | None = None) -> LimitExceeded:
    return LimitExceeded(
        loc,
        f"nested more than {MAX_DEPTH} levels deep",
        "flatten the flow: use fewer nested if steps or conditions",
        line,
    )


def nodes_error(loc: Loc, line: int | None = None) -> LimitExceeded:
    return LimitExceeded(
        loc,
        f"the document holds more than {MAX_NODES:,} values (YAML aliases counted as expanded)",
        "split the flow, or use fewer YAML aliases (*name)",
        line,
    )


def check_json_depth(text: str) -> None:
    """Refuse JSON text nested deeper than :data:`MAX_DEPTH` before ``json.loads`` recurses into it.

    A scan of strings, brackets, commas and colons (strings do not nest); the error names the path
    and line of the first value too deep. Text that is not JSON is left to the parser.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    # Per open container: its key or index so far, and (for objects) whether a key comes next.
    stack: list[list[Any]] = []
    for match in _JSON_TOKEN.finditer(text):
        found = match.group()
        if found in "[{":
            if len(stack) >= MAX_DEPTH:
                loc = tuple(part for part, _ in stack if part is not None)
                raise depth_error(loc, text.count("\n", 0, match.start()) + 1)
            stack.append([0, False] if found == "[" else [None, True])
        elif found in "]}":
            if stack:
                stack.pop()
        elif found == ",":
            if stack and stack[-1][1] is False and isinstance(stack[-1][0], int):
                stack[-1][0] += 1
            elif stack:
                stack[-1][1] = True
        elif found == ":":
            pass
        elif stack and stack[-1][1] is True:  # a string in key position
            try:
                stack[-1][0] = str(json.loads(found))
            except ValueError:
                stack[-1][0] = found
            stack[-1][1] = False


def check_shape(data: Any, problems: Problems) -> bool:
    """Add a problem for every value over a bound in parsed ``data``; True when none is.

    The walk is iterative and stops (with one problem) past :data:`MAX_NODES` values or
    :data:`MAX_DEPTH` levels, so it is safe on any parsed data, shared or cyclic included.
    """
    before = len(problems)
    stack: list[tuple[Any, Loc]] = [(data, ())]
    seen = 0
    while stack:
        value, loc = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            problems.add((), *_args(nodes_error(())))
            return False
        if len(loc) > MAX_DEPTH:
            problems.add(loc[:MAX_DEPTH], *_args(depth_error(loc)))
            return False
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and len(key) > MAX_KEY_LENGTH:
                    problems.add(loc, f"a key is {len(key):,} characters long (at most {MAX_KEY_LENGTH})")
                    continue
                stack.append((item, (*loc, key if isinstance(key, str) else str(key))))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*loc, index)) for index, item in enumerate(value))
        else:
            _check_scalar(value, loc, problems)
    if len(problems) == before:
        _check_steps(data, problems)
    return len(problems) == before


def _args(exc: LimitExceeded) -> tuple[str, str | None]:
    return exc.message, exc.hint


def _check_scalar(value: Any, loc: Loc, problems: Problems) -> None:
    if isinstance(value, LongNumber):
        problems.add(
            loc,
            f"a number written with {len(value.text):,} characters (at most {MAX_NUMBER_LENGTH})",
            "numbers in flows are small; write it as text in quotes if it is an identifier",
        )
    elif isinstance(value, float) and not math.isfinite(value):
        problems.add(loc, "must be a finite number", "write a smaller number")
    elif isinstance(value, str):
        key = loc[-1] if loc else None
        limit = MAX_NAME_LENGTH if key in _NAME_KEYS else MAX_TEXT_LENGTH
        if len(value) > limit:
            problems.add(loc, f"is too long ({len(value):,} characters; at most {limit:,})")


def iter_steps(data: Any) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    """Every step mapping of a raw flow document with its location, nested ones included, along
    the step grammar (steps, then, else, on_event, on_timeout, split variants' steps)."""
    if not isinstance(data, Mapping):
        return
    pending: list[tuple[Any, Loc]] = [(data.get("steps"), ("steps",))]
    while pending:
        steps, loc = pending.pop()
        if not isinstance(steps, list):
            continue
        for index, step in enumerate(steps):
            if not isinstance(step, Mapping):
                continue
            yield (*loc, index), step
            pending.extend((step.get(key), (*loc, index, key)) for key in _STEP_LIST_KEYS)
            variants = step.get("split")
            if isinstance(variants, list):
                pending.extend(
                    (variant.get("steps"), (*loc, index, "split", position, "steps"))
                    for position, variant in enumerate(variants)
                    if isinstance(variant, Mapping)
                )


def _check_steps(data: Any, problems: Problems) -> None:
    """Refuse more than :data:`MAX_STEPS` steps in all, or a split with more than :data:`MAX_VARIANTS`."""
    total = 0
    for loc, step in iter_steps(data):
        total += 1
        variants = step.get("split")
        if isinstance(variants, list) and len(variants) > MAX_VARIANTS:
            problems.add(
                (*loc, "split"),
                f"a split with {len(variants)} variants (at most {MAX_VARIANTS})",
                "use fewer variants, or nest splits",
            )
    if total > MAX_STEPS:
        problems.add(("steps",), f"the flow has {total:,} steps (at most {MAX_STEPS})", "split it into several flows")

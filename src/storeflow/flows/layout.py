"""Editor metadata of a flow: the top-level ``layout`` key, which the engine never reads.

A visual editor keeps node positions there, by step id::

    layout:
      nodes:
        wait-1a2b3c: {x: 120, y: 40}

Its shape is checked loosely: a mapping of JSON values (finite numbers, text, booleans, null,
lists, mappings with text keys), at most :data:`MAX_LAYOUT_DEPTH` deep and
:data:`MAX_LAYOUT_CHARS` characters as JSON; ``nodes``, when present, maps step ids (slugs) to
mappings whose ``x`` and ``y``, when present, are numbers. The layout is stored with the flow but
is not part of its digest: a change to the layout alone does not make a new version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

from storeflow.flows.problems import SLUG, SLUG_HINT, Loc, Problems, type_name

MAX_LAYOUT_CHARS: Final = 65_536
MAX_LAYOUT_DEPTH: Final = 8


def read_layout(value: Any, loc: Loc, problems: Problems) -> dict[str, Any] | None:
    """The layout as plain JSON data, or None after adding the problems found."""
    if not isinstance(value, Mapping):
        problems.add(loc, f"must be a mapping, not {type_name(value)}", "e.g. {nodes: {step-id: {x: 0, y: 0}}}")
        return None
    before = len(problems)
    data = _json_value(value, loc, problems, 1)
    if len(problems) > before or not isinstance(data, dict):
        return None
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    if size > MAX_LAYOUT_CHARS:
        problems.add(loc, f"is too large ({size} characters as JSON, at most {MAX_LAYOUT_CHARS})",
                     "keep only what the editor needs, such as node positions")
        return None
    if "nodes" in data:
        _check_nodes(data["nodes"], (*loc, "nodes"), problems)
    return data if len(problems) == before else None


def _json_value(value: Any, loc: Loc, problems: Problems, depth: int) -> Any:
    if depth > MAX_LAYOUT_DEPTH and isinstance(value, Mapping | list):
        problems.add(loc, f"is nested too deeply (at most {MAX_LAYOUT_DEPTH} levels in layout)")
        return None
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(loc, f"keys must be text, not {type_name(key)}")
                return None
            out[key] = _json_value(item, (*loc, key), problems, depth + 1)
        return out
    if isinstance(value, list):
        return [_json_value(item, (*loc, i), problems, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        problems.add(loc, f"{value} is not a finite number")
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return value
    problems.add(loc, f"must be a JSON value, not {type_name(value)}")
    return None


def _check_nodes(nodes: Any, loc: Loc, problems: Problems) -> None:
    if not isinstance(nodes, dict):
        problems.add(loc, f"must be a mapping of step id to position, not {type_name(nodes)}",
                     "e.g. {wait-1a2b3c: {x: 120, y: 40}}")
        return
    for step_id, node in nodes.items():
        if not SLUG.fullmatch(step_id):
            problems.add((*loc, step_id), f'"{step_id}" is not a step id', SLUG_HINT)
        elif not isinstance(node, dict):
            problems.add((*loc, step_id), f"must be a mapping such as {{x: 0, y: 0}}, not {type_name(node)}")
        else:
            for axis in ("x", "y"):
                if axis in node and (isinstance(node[axis], bool) or not isinstance(node[axis], int | float)):
                    problems.add((*loc, step_id, axis), f"must be a number, not {type_name(node[axis])}")

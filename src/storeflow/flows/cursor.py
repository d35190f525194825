"""Addressing and walking the steps of a flow; the engine moves runs through flows with this.

A step is addressed by its :data:`StepPath`, the document path of the step:
``("steps", 2)`` is the third top-level step, ``("steps", 2, "then", 0)`` the first step of its
``then`` branch, ``("steps", 1, "split", 0, "steps", 3)`` the fourth step of the first split variant.
After the last step of a branch the run continues with the step after the branching step; after
the last top-level step the run is complete.

A run remembers its step by :func:`step_key`, the step's id (every stored step has one, see
``step_ids.py``; the formatted path in versions stored before ids), and finds it again with
:func:`find_step`, which takes either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Final

from storeflow.flows.definition import FlowDefinition
from storeflow.flows.problems import format_loc, parse_loc
from storeflow.flows.steps import IfStep, SplitStep, Step, Variant, WaitForStep

StepPath = tuple[str | int, ...]
"""The document path of a step, e.g. ``("steps", 2, "then", 0)``."""

BRANCHES: Final[tuple[str, ...]] = ("then", "else", "on_event", "on_timeout")


def format_path(path: StepPath) -> str:
    """``("steps", 2, "then", 0)`` -> ``"steps[2].then[0]"``."""
    return format_loc(path)


def parse_path(text: str) -> StepPath:
    """``"steps[2].then[0]"`` -> ``("steps", 2, "then", 0)``; raises ValueError on other text."""
    return parse_loc(text)


def first_path(defn: FlowDefinition) -> StepPath:
    """The path of the first step: ``("steps", 0)``."""
    return ("steps", 0)


def _branch_steps(step: Step, branch: str) -> tuple[Step, ...]:
    if isinstance(step, IfStep) and branch in ("then", "else"):
        return step.then if branch == "then" else step.else_
    if isinstance(step, WaitForStep) and branch in ("on_event", "on_timeout"):
        return step.on_event if branch == "on_event" else step.on_timeout
    raise KeyError(f"a {step.kind} step has no branch {branch!r}")


def _locate(defn: FlowDefinition, path: StepPath) -> tuple[tuple[Step, ...], int]:
    """The list of steps that ``path`` points into, and the index in it. KeyError if none."""
    if len(path) < 2 or path[0] != "steps":
        raise KeyError(f"not a step path: {path!r}")
    steps = defn.steps
    rest = path[1:]
    while True:
        index = rest[0]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(steps):
            raise KeyError(f"no step at {format_path(path)}")
        if len(rest) == 1:
            return steps, index
        step, rest = steps[index], rest[1:]
        key = rest[0]
        if key == "split" and isinstance(step, SplitStep):
            if len(rest) < 4 or not isinstance(rest[1], int) or rest[2] != "steps":
                raise KeyError(f"not a step path: {format_path(path)}")
            if not 0 <= rest[1] < len(step.variants):
                raise KeyError(f"no variant at {format_path(path[: len(path) - len(rest) + 2])}")
            steps, rest = step.variants[rest[1]].steps, rest[3:]
        elif isinstance(key, str) and key in BRANCHES and len(rest) >= 2:
            steps, rest = _branch_steps(step, key), rest[1:]
        else:
            raise KeyError(f"not a step path: {format_path(path)}")


def step_at(defn: FlowDefinition, path: StepPath) -> Step:
    """The step at ``path``; raises KeyError when there is none."""
    steps, index = _locate(defn, path)
    return steps[index]


def _parent_path(path: StepPath) -> StepPath | None:
    """The path of the branching step that contains ``path``; None for a top-level step."""
    if len(path) == 2:
        return None
    if len(path) >= 6 and path[-4] == "split":
        return path[:-4]
    return path[:-2]


def next_path(defn: FlowDefinition, path: StepPath) -> StepPath | None:
    """Where a run goes after the step at ``path`` completes; None when the run is complete."""
    steps, index = _locate(defn, path)
    if index + 1 < len(steps):
        return (*path[:-1], index + 1)
    parent = _parent_path(path)
    return None if parent is None else next_path(defn, parent)


def branch_path(defn: FlowDefinition, path: StepPath, branch: str | int) -> StepPath | None:
    """The first step of ``branch`` of the step at ``path``: "then"/"else" of an if, "on_event"/
    "on_timeout" of a wait_for, or a variant (index or name) of a split. An empty branch goes on
    with :func:`next_path`. Raises KeyError for a branch the step does not have."""
    step = step_at(defn, path)
    if isinstance(step, SplitStep):
        index = _variant_index(step.variants, branch)
        if step.variants[index].steps:
            return (*path, "split", index, "steps", 0)
        return next_path(defn, path)
    if not isinstance(branch, str):
        raise KeyError(f"a {step.kind} step has no branch {branch!r}")
    if _branch_steps(step, branch):
        return (*path, branch, 0)
    return next_path(defn, path)


def _variant_index(variants: Sequence[Variant], branch: str | int) -> int:
    if isinstance(branch, int) and not isinstance(branch, bool):
        if 0 <= branch < len(variants):
            return branch
    elif isinstance(branch, str):
        for i, variant in enumerate(variants):
            if variant.name == branch:
                return i
    raise KeyError(f"the split has no variant {branch!r}")


def step_key(defn: FlowDefinition, path: StepPath) -> str:
    """A stable name for the step: its ``id`` when set, else its formatted path."""
    step = step_at(defn, path)
    return step.id if step.id is not None else format_path(path)


_STEP_INDEX: dict[int, tuple[FlowDefinition, dict[str, StepPath]]] = {}
_STEP_INDEX_MAX = 4096  # definitions indexed at once (flow versions in use); past it, start afresh


def _step_index(defn: FlowDefinition) -> dict[str, StepPath]:
    """Step id -> path for a definition, built once per definition (definitions are frozen)."""
    cached = _STEP_INDEX.get(id(defn))
    if cached is None or cached[0] is not defn:
        if len(_STEP_INDEX) >= _STEP_INDEX_MAX:
            _STEP_INDEX.clear()
        index = {step.id: path for path, step in iter_steps(defn) if step.id is not None}
        cached = _STEP_INDEX[id(defn)] = (defn, index)
    return cached[1]


def find_step(defn: FlowDefinition, key: str) -> StepPath | None:
    """The path of the step with id ``key``, or of the step at formatted path ``key``; None if none."""
    found = _step_index(defn).get(key)
    if found is not None:
        return found
    try:
        path = parse_path(key)
        step_at(defn, path)
    except (KeyError, ValueError):
        return None
    return path


def iter_steps(defn: FlowDefinition) -> Iterator[tuple[StepPath, Step]]:
    """Every step with its path, depth first in document order (a step before its branches)."""
    yield from _iter(defn.steps, ("steps",))


def _iter(steps: tuple[Step, ...], prefix: StepPath) -> Iterator[tuple[StepPath, Step]]:
    for index, step in enumerate(steps):
        path = (*prefix, index)
        yield path, step
        if isinstance(step, IfStep):
            yield from _iter(step.then, (*path, "then"))
            yield from _iter(step.else_, (*path, "else"))
        elif isinstance(step, WaitForStep):
            yield from _iter(step.on_event, (*path, "on_event"))
            yield from _iter(step.on_timeout, (*path, "on_timeout"))
        elif isinstance(step, SplitStep):
            for v, variant in enumerate(step.variants):
                yield from _iter(variant.steps, (*path, "split", v, "steps"))


def choose_variant(variants: Sequence[Variant], seed: str) -> int:
    """A weighted choice of variant index, deterministic in ``seed`` (the engine passes
    ``f"{flow_id}:{profile_id}:{step_key}"``), so a profile always lands in the same variant."""
    if not variants:
        raise ValueError("no variants to choose from")
    total = sum(variant.weight for variant in variants)
    point = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big") % total
    for index, variant in enumerate(variants):
        point -= variant.weight
        if point < 0:
            return index
    raise AssertionError("unreachable")  # pragma: no cover

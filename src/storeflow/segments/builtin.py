"""The built-in segments: editable templates shipped in ``storeflow/segments/templates/*.yaml``.

Each template is an ordinary segment document whose id is its file name (``rfm-champions``); its
group is the part of the id before the first ``-`` (rfm, lifecycle, engagement, behaviour). Installing
one applies it like any segment (``storeflow segments templates install NAME``); from then on it is
the store's own segment, to edit and apply again. docs/segments.md ("Built-in segments") describes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from storeflow.errors import NotFoundError
from storeflow.flows.vocabulary import did_you_mean
from storeflow.segments.definition import SegmentDefinition, load_segment, referenced_segments

GROUPS: Final[tuple[str, ...]] = ("rfm", "lifecycle", "engagement", "behaviour")
"""The template groups, in the order they are listed."""


@dataclass(frozen=True)
class Template:
    """One built-in segment: its document (as shipped) and the segment it defines."""

    name: str
    group: str
    text: str
    segment: SegmentDefinition


@cache
def templates() -> tuple[Template, ...]:
    """Every built-in template, by group then name (parsed once)."""
    folder = resources.files("storeflow.segments") / "templates"
    found: list[Template] = []
    for item in folder.iterdir():
        if not item.name.endswith(".yaml"):
            continue
        text = item.read_text(encoding="utf-8")
        segment = load_segment(text, source=f"segments/templates/{item.name}")
        name = item.name.removesuffix(".yaml")
        if segment.id != name:  # pragma: no cover - a packaging mistake, caught by the tests
            raise ValueError(f"segments/templates/{item.name}: id {segment.id!r} differs from the file name")
        found.append(Template(name, name.split("-", 1)[0], text, segment))
    found.sort(key=lambda t: (GROUPS.index(t.group) if t.group in GROUPS else len(GROUPS), t.name))
    return tuple(found)


def template(name: str) -> Template:
    """The template called ``name``; NotFoundError with a suggestion otherwise."""
    for item in templates():
        if item.name == name:
            return item
    raise _unknown(name)


def resolve(names: Iterable[str]) -> list[Template]:
    """The templates named, where a group name (``rfm``) or ``all`` means each template of it, plus
    the templates they refer to with ``in_segment``; each once, in listing order."""
    by_name = {t.name: t for t in templates()}
    wanted: set[str] = set()
    for name in names:
        if name == "all":
            wanted.update(by_name)
        elif name in GROUPS:
            wanted.update(t.name for t in templates() if t.group == name)
        elif name in by_name:
            wanted.add(name)
        else:
            raise _unknown(name)
    todo = list(wanted)
    while todo:
        for ref in referenced_segments(by_name[todo.pop()].segment):
            if ref in by_name and ref not in wanted:
                wanted.add(ref)
                todo.append(ref)
    return [t for t in templates() if t.name in wanted]


def _unknown(name: str) -> NotFoundError:
    names = [t.name for t in templates()]
    hint = did_you_mean(name, [*names, *GROUPS, "all"], cutoff=0.6) or (
        "groups: " + ", ".join(GROUPS) + "; `storeflow segments templates list` shows every template")
    return NotFoundError(f"no built-in segment template {name!r}; {hint}")


__all__ = ["GROUPS", "Template", "resolve", "template", "templates"]

"""Stable step ids: every stored step has one, generated when missing and kept across edits.

When a flow is applied, :func:`assign_step_ids` gives an id to every step the document left
without one. A step keeps the id of its counterpart in the previous version when it can be
matched to one:

1. steps with an ``id`` in the document keep it (and anchor the matching around them);
2. in each list of steps (the top level, or a branch of two matched steps), the steps are aligned
   with the previous version's list by their content (``difflib``: inserting or removing a step
   does not move the others' ids); steps left over in a changed stretch are paired in order with a
   previous step of the same kind (the same action, or the same step form), so editing a step's
   parameters keeps its id;
3. a step still unmatched takes the id of the one previous step anywhere in the flow with exactly
   its content (a step moved into a branch);
4. any other step gets a new id, ``<action or form>-<6 hex>``, from a hash of its content and
   path: the same document applied anywhere gets the same ids, and a new id is never one the
   previous version used for another step.

The content of a step, for matching, is its canonical document without its ``id``, its ``name``
and the steps of its branches.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator, Mapping
from itertools import count
from typing import Any, Final

from storeflow.flows.definition import FlowDefinition, canonical_json, parse_flow
from storeflow.flows.problems import Loc, format_loc
from storeflow.flows.steps import STEP_FORMS

BRANCH_KEYS: Final[tuple[str, ...]] = ("then", "else", "on_event", "on_timeout")
MAX_BASE: Final = 40

StepDoc = Mapping[str, Any]


def step_form(step: StepDoc) -> str:
    """The form key of a step document: action, wait, wait_until, wait_for, if, split or exit."""
    return next((form for form in STEP_FORMS if form in step), "step")


def step_base(step: StepDoc) -> str:
    """What a generated id starts with: the action's name, else the step's form."""
    form = step_form(step)
    action = step.get("action")
    return (action if form == "action" and isinstance(action, str) else form)[:MAX_BASE]


def step_content(step: StepDoc) -> str:
    """The step's own content as canonical JSON: no id, no name, no steps of its branches."""
    if step_form(step) == "action":
        own = {k: v for k, v in step.items() if k not in ("id", "name")}
    else:
        own = {k: v for k, v in step.items() if k not in ("id", "name", *BRANCH_KEYS)}
        if isinstance(own.get("split"), list):
            own["split"] = [{k: v for k, v in variant.items() if k != "steps"} for variant in own["split"]]
    return canonical_json(own)


def branches(step: StepDoc) -> Iterator[tuple[str, Loc, list[Any]]]:
    """The step lists inside a step: a label that names the same branch in another version, the
    path of the list relative to the step, and the list."""
    form = step_form(step)
    if form == "action":
        return
    for key in BRANCH_KEYS:
        if isinstance(step.get(key), list):
            yield key, (key,), step[key]
    if form == "split" and isinstance(step.get("split"), list):
        for index, variant in enumerate(step["split"]):
            if isinstance(variant, Mapping) and isinstance(variant.get("steps"), list):
                yield f"split:{variant.get('name', index)}", ("split", index, "steps"), variant["steps"]


def walk_documents(steps: list[Any], prefix: Loc = ("steps",)) -> Iterator[tuple[Loc, StepDoc]]:
    """Every step document with its path, depth first in document order."""
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        path = (*prefix, index)
        yield path, step
        for _, rel, inner in branches(step):
            yield from walk_documents(inner, (*path, *rel))


class _Matcher:
    """Pairs the steps of a new document with those of the previous version (see the module doc)."""

    def __init__(self, new_steps: list[Any], old_steps: list[Any]) -> None:
        self.new_steps, self.old_steps = new_steps, old_steps
        self.explicit = {str(s["id"]) for _, s in walk_documents(new_steps) if s.get("id")}
        self.old_ids = {str(s["id"]) for _, s in walk_documents(old_steps) if s.get("id")}
        self.taken: set[str] = set(self.explicit)
        self.ids: dict[Loc, str] = {}
        self.pending: list[tuple[Loc, StepDoc]] = []

    def run(self) -> dict[Loc, str]:
        self._align(self.new_steps, self.old_steps, ("steps",))
        self._by_content()
        used = self.taken | self.old_ids
        for path, step in self.pending:
            self.ids[path] = fresh = _new_id(step, path, used)
            used.add(fresh)
        return self.ids

    def _sig(self, step: StepDoc, *, old: bool) -> str:
        step_id = step.get("id")
        if step_id and (not old or step_id in self.explicit):
            return f"#id:{step_id}"
        return step_content(step)

    def _take(self, path: Loc, old: StepDoc | None) -> bool:
        """Give the step at ``path`` the id of ``old`` if it has a free one."""
        old_id = old.get("id") if old is not None else None
        if not old_id or old_id in self.taken:
            return False
        self.ids[path] = str(old_id)
        self.taken.add(str(old_id))
        return True

    def _align(self, new: list[Any], old: list[Any], prefix: Loc) -> None:
        new_docs = [s if isinstance(s, Mapping) else {} for s in new]
        old_docs = [s if isinstance(s, Mapping) else {} for s in old]
        partner: dict[int, StepDoc | None] = {}
        matcher = difflib.SequenceMatcher(None, [self._sig(s, old=True) for s in old_docs],
                                          [self._sig(s, old=False) for s in new_docs], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                partner.update((j1 + k, old_docs[i1 + k]) for k in range(j2 - j1))
            elif tag == "replace":
                free = [o for o in old_docs[i1:i2] if not o.get("id") or o["id"] not in self.explicit]
                for j in range(j1, j2):
                    if new_docs[j].get("id"):
                        continue
                    same = next((o for o in free if step_base(o) == step_base(new_docs[j])
                                 and step_form(o) == step_form(new_docs[j])), None)
                    if same is not None:
                        free.remove(same)
                        partner[j] = same
        old_by_id = {str(o["id"]): o for o in old_docs if o.get("id")}
        for j, step in enumerate(new_docs):
            path = (*prefix, j)
            mate = partner.get(j)
            if step.get("id"):
                mate = mate or old_by_id.get(str(step["id"])) or self._old_anywhere(str(step["id"]))
            elif not self._take(path, mate):
                self.pending.append((path, step))
            old_branches = {label: inner for label, _, inner in branches(mate)} if mate is not None else {}
            for label, rel, inner in branches(step):
                self._align(inner, old_branches.get(label, []), (*path, *rel))

    def _old_anywhere(self, step_id: str) -> StepDoc | None:
        return next((s for _, s in walk_documents(self.old_steps) if s.get("id") == step_id), None)

    def _by_content(self) -> None:
        """Unmatched steps take the id of the one free previous step with exactly their content."""
        free: dict[str, list[StepDoc]] = {}
        for _, old in walk_documents(self.old_steps):
            if old.get("id") and old["id"] not in self.taken:
                free.setdefault(step_content(old), []).append(old)
        wanted: dict[str, int] = {}
        for _, step in self.pending:
            wanted[step_content(step)] = wanted.get(step_content(step), 0) + 1
        left = []
        for path, step in self.pending:
            content = step_content(step)
            olds = free.get(content, [])
            if not (len(olds) == 1 and wanted[content] == 1 and self._take(path, olds[0])):
                left.append((path, step))
        self.pending = left


def _new_id(step: StepDoc, path: Loc, used: set[str]) -> str:
    base, content = step_base(step), step_content(step)
    for salt in count():
        digest = hashlib.sha256(f"{format_loc(path)}\n{content}\n{salt}".encode()).hexdigest()[:6]
        candidate = f"{base}-{digest}"
        if candidate not in used:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def _with_ids(steps: list[Any], ids: Mapping[Loc, str], prefix: Loc) -> list[Any]:
    out: list[Any] = []
    for index, step in enumerate(steps):
        path = (*prefix, index)
        doc = {"id": step.get("id") or ids[path], **{k: v for k, v in step.items() if k != "id"}}
        if step_form(doc) == "split":
            doc["split"] = [{**v, "steps": _with_ids(v["steps"], ids, (*path, "split", i, "steps"))}
                            if isinstance(v.get("steps"), list) else v for i, v in enumerate(doc["split"])]
        elif step_form(doc) != "action":
            for key in BRANCH_KEYS:
                if isinstance(doc.get(key), list):
                    doc[key] = _with_ids(doc[key], ids, (*path, key))
        out.append(doc)
    return out


def assign_step_ids(defn: FlowDefinition, previous: Mapping[str, Any] | None = None) -> FlowDefinition:
    """``defn`` with an id on every step, kept from ``previous`` (the stored document of the
    flow's current version) where a step matches one of its steps; returned as is when every
    step already has an id."""
    doc = defn.to_document()
    steps: list[Any] = doc["steps"]
    if all(step.get("id") for _, step in walk_documents(steps)):
        return defn
    old_steps = previous.get("steps") if previous is not None else None
    ids = _Matcher(steps, old_steps if isinstance(old_steps, list) else []).run()
    doc["steps"] = _with_ids(steps, ids, ("steps",))
    return parse_flow(doc, source=f"flow {defn.id}")


def step_ids_of(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(step id, formatted path) of every step of a stored document that has an id, in order."""
    steps = document.get("steps")
    if not isinstance(steps, list):
        return []
    return [(str(step["id"]), format_loc(path)) for path, step in walk_documents(steps) if step.get("id")]

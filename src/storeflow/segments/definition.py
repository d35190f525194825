"""Segment documents: ``{id, name, description, condition}`` in YAML or JSON, validated with every
problem at once (path, hint and, for YAML, line), frozen as a :class:`SegmentDefinition`.

A segment's condition is the flows' condition language (``storeflow.flows.condition_parser``)
evaluated for one profile: at its top level a comparison reads only the ``profile`` root; the
profile's events, orders, carts and messages are read through the collection conditions
(``{history: ...}``, ``{orders: ...}``, ``{carts: ...}``, ``{messages: ...}``), whose ``where``
reads each item through its own root. A flow's anchors (``since: flow_start`` / ``trigger``) mean
nothing for a segment and are refused.

Documents are bounded like flows (``storeflow.flows.limits``) and smaller still:
:data:`MAX_SEGMENT_BYTES`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from storeflow.errors import Problem, SegmentValidationError
from storeflow.flows.condition_parser import read_condition
from storeflow.flows.conditions import Condition, InSegment, condition_to_document, iter_conditions
from storeflow.flows.definition import canonical_json
from storeflow.flows.limits import (
    LimitExceeded,
    check_json_depth,
    check_shape,
    check_size,
)
from storeflow.flows.loader import json_float, json_int, read_yaml
from storeflow.flows.problems import Loc, Problems, check_keys, type_name, want_mapping, want_slug, want_text

Format = Literal["yaml", "json", "auto"]

TOP_LEVEL_KEYS: Final[tuple[str, ...]] = ("id", "name", "description", "condition")
REQUIRED_KEYS: Final[tuple[str, ...]] = ("id", "name", "condition")
MAX_SEGMENT_BYTES: Final = 256_000
"""Largest segment document, in bytes of UTF-8."""

COLLECTION_KEYS: Final[tuple[str, ...]] = ("history", "orders", "carts", "messages")
"""Condition keys whose ``where`` reads the collection's own record root (checked by the parser)."""
FLOW_ANCHORS: Final[tuple[str, ...]] = ("flow_start", "trigger")

_ROOT_HINTS: Final[dict[str, str]] = {
    "event": "a segment has no triggering event; count the profile's events with "
             "{history: {event: order_placed, within: 30d}, count: {gte: 1}}",
    "order": "a segment has no current order; read the profile's orders with "
             "{orders: {within: 90d, where: {field: order.total, gte: 100}}, exists: true}",
    "cart": "a segment has no current cart; read the profile's carts with "
            "{carts: {where: {field: cart.value, gte: 100}}, exists: true}",
    "product": "a segment has no current product; read products bought through "
               "{orders: {where: ...}, exists: true}",
    "run": "a segment is not part of a flow run; use profile fields",
    "message": "read the profile's messages with {messages: {channel: email, within: 30d}, exists: true}",
}


class SegmentDefinition(BaseModel):
    """A validated segment: its slug id, name, optional description and condition (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    description: str | None = None
    condition: Condition

    def to_document(self) -> dict[str, Any]:
        """The canonical JSON-able document; :func:`load_segment` accepts it again."""
        doc: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description is not None:
            doc["description"] = self.description
        doc["condition"] = condition_to_document(self.condition)
        return doc

    @property
    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`to_document`: same content, same digest."""
        return hashlib.sha256(canonical_json(self.to_document()).encode("utf-8")).hexdigest()


def referenced_segments(defn: SegmentDefinition | Condition) -> set[str]:
    """The ids of the segments the condition tests with ``in_segment`` (anywhere in it)."""
    condition = defn.condition if isinstance(defn, SegmentDefinition) else defn
    return {node.segment for node in iter_conditions(condition) if isinstance(node, InSegment)}


# --- reading -------------------------------------------------------------------------------------


def load_segment(
    document: str | bytes | Mapping[str, Any], *, fmt: Format = "auto", source: str = "<segment>"
) -> SegmentDefinition:
    """Parse and validate a segment document: YAML or JSON text (``fmt="auto"`` goes by the
    extension of ``source``, else by the text) or an already parsed mapping.

    Raises :class:`~storeflow.errors.SegmentValidationError` listing every problem, with the
    document path, a hint and (YAML) the line of each.
    """
    lines: dict[Loc, int] = {}
    problems = Problems()
    try:
        if isinstance(document, Mapping):
            data: Any = document
        else:
            data, lines = _parse_text(document, fmt, source, problems)
        if not check_shape(data, problems):
            raise SegmentValidationError(problems.to_problems(lines), source=source)
    except LimitExceeded as exc:
        problems = Problems()
        problems.add(exc.loc, exc.message, exc.hint, line=exc.line)
        raise SegmentValidationError(problems.to_problems(lines), source=source) from None
    segment = read_segment(data, problems)
    if segment is None or problems:
        if not problems:  # pragma: no cover - every None comes with a problem
            problems.add((), "the segment is not valid")
        raise SegmentValidationError(problems.to_problems(lines), source=source)
    return segment


def _parse_text(document: str | bytes, fmt: Format, source: str, problems: Problems) -> tuple[Any, dict[Loc, int]]:
    if isinstance(document, bytes):
        try:
            text = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _syntax_error(f"the document is not UTF-8 text (byte {exc.start})", None, source) from None
    else:
        text = document
    if len(text) > MAX_SEGMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise LimitExceeded((), f"the document is larger than {MAX_SEGMENT_BYTES:,} bytes",
                            "split the condition into segments and combine them with in_segment")
    check_size(text)
    kind = _guess_format(text, source) if fmt == "auto" else fmt
    if kind == "json":
        check_json_depth(text)
        try:
            return json.loads(text, parse_constant=_reject_constant, parse_int=json_int,
                              parse_float=json_float), {}
        except json.JSONDecodeError as exc:
            raise _syntax_error(f"JSON syntax error: {exc.msg}", exc.lineno, source) from None
        except ValueError as exc:
            raise _syntax_error(f"JSON syntax error: {exc}", None, source) from None
    try:
        return read_yaml(text, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
        raise _syntax_error(message, mark.line + 1 if mark else None, source) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(f"YAML syntax error: {exc}", None, source) from None


def _guess_format(text: str, source: str) -> Literal["yaml", "json"]:
    lowered = source.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith((".yaml", ".yml")):
        return "yaml"
    if text.lstrip().startswith(("{", "[")):
        check_json_depth(text)
        try:
            json.loads(text, parse_int=json_int, parse_float=json_float)
        except ValueError:
            return "yaml"
        return "json"
    return "yaml"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a segment")


def _syntax_error(message: str, line: int | None, source: str) -> SegmentValidationError:
    return SegmentValidationError([Problem(path="", message=message, line=line)], source=source)


def read_segment(data: Any, problems: Problems) -> SegmentDefinition | None:
    """A segment from a parsed document, or None after adding every problem found to ``problems``."""
    if data is None:
        problems.add((), "the document is empty", "a segment needs id, name and condition")
        return None
    doc = want_mapping(data, (), problems, "a mapping with id, name and condition")
    if doc is None:
        return None
    check_keys(doc, (), problems, TOP_LEVEL_KEYS, REQUIRED_KEYS)
    fields: dict[str, Any] = {}
    if "id" in doc:
        fields["id"] = want_slug(doc["id"], ("id",), problems)
    if "name" in doc:
        fields["name"] = want_text(doc["name"], ("name",), problems)
    description = doc.get("description")
    if description is not None:
        if isinstance(description, str):
            fields["description"] = description
        else:
            problems.add(("description",), f"must be text, not {type_name(description)}")
    if "condition" in doc:
        check_segment_roots(doc["condition"], ("condition",), problems)
        fields["condition"] = read_condition(doc["condition"], ("condition",), problems)
    if problems or any(fields.get(key) is None for key in REQUIRED_KEYS):
        return None
    return SegmentDefinition(**fields)


def check_segment_roots(data: Any, loc: Loc, problems: Problems) -> None:
    """Refuse, in a raw condition document, comparisons outside a collection's ``where`` whose
    field is not on the ``profile`` root, and the flow-only ``since`` anchors. Shapes the parser
    refuses anyway (wrong types, unknown roots) are left to it, so nothing is reported twice."""
    stack: list[tuple[Any, Loc]] = [(data, loc)]
    while stack:
        node, here = stack.pop()
        if not isinstance(node, Mapping):
            continue
        for key in ("all", "any"):
            items = node.get(key)
            if isinstance(items, list):
                stack.extend((item, (*here, key, i)) for i, item in enumerate(items))
        if "not" in node:
            stack.append((node["not"], (*here, "not")))
        field = node.get("field")
        if isinstance(field, str):
            root = field.split(".", 1)[0]
            if root in _ROOT_HINTS:
                problems.add((*here, "field"), f'"{field}" cannot be used in a segment condition',
                             f'fields here start with "profile."; {_ROOT_HINTS[root]}')
        for key in COLLECTION_KEYS:
            spec = node.get(key)
            if isinstance(spec, Mapping) and spec.get("since") in FLOW_ANCHORS:
                problems.add((*here, key, "since"), f'"since: {spec["since"]}" is a flow anchor; a segment has none',
                             "use within: 30d, since: first_order, or a date such as 2026-01-01")

"""Loading flow documents from YAML or JSON text, reporting every problem with its line.

YAML is read with YAML 1.2 style scalars: only ``true``/``false`` are booleans (``no`` and ``NO``
stay text), ``09:30`` stays text, and dates stay text, so a YAML flow means the same as the JSON one.

Documents are bounded (size, nesting, values with YAML aliases expanded, text and number lengths,
steps; see ``storeflow.flows.limits``): an oversized or hostile document is refused quickly with a
problem naming where, never with a RecursionError or minutes of CPU.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

import yaml

from storeflow.errors import FlowValidationError, Problem
from storeflow.flows.definition import FlowDefinition, read_flow
from storeflow.flows.destinations import DEFAULT_POLICY, DestinationPolicy, check_webhook_destinations
from storeflow.flows.limits import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_NUMBER_LENGTH,
    LimitExceeded,
    LongNumber,
    check_json_depth,
    check_shape,
    check_size,
    depth_error,
    nodes_error,
)
from storeflow.flows.problems import Loc, Problems

Format = Literal["yaml", "json", "auto"]
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


class FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (no yes/no/on/off booleans, no sexagesimal
    numbers, no timestamps, no octal ``010``)."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, Any]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._loc: list[str | int] = []
        self._depth = 0
        # Per composed node (by id; the nodes live as long as the loader): how many values it
        # expands to and how deep it is, aliases expanded. An alias to a node still being
        # composed (not in here yet) is a cycle.
        self._expanded: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """PyYAML's composer, bounded: nesting depth and the expanded size of every node are
        checked as the document is composed, so deep or alias-bomb documents stop early."""
        if self.check_event(yaml.AliasEvent):
            line = self._line()
            node = super().compose_node(parent, index)
            if node is None or id(node) not in self._expanded:
                raise LimitExceeded(
                    tuple(self._loc),
                    "a YAML alias refers to the mapping or list it is inside",
                    "aliases must refer to a complete value defined earlier",
                    line,
                )
            self._check_expansion(node, line)
            return node
        line = self._line()
        part = index if isinstance(index, int) else str(index.value) if isinstance(index, yaml.ScalarNode) else None
        if part is not None:
            self._loc.append(part)
        self._depth += 1
        if self._depth > MAX_DEPTH + 1:
            raise depth_error(tuple(self._loc), line)
        node = super().compose_node(parent, index)
        if node is None:  # pragma: no cover - PyYAML composes a node for every event it accepts
            raise yaml.YAMLError("empty node")
        if isinstance(node, yaml.SequenceNode):
            children = [self._expanded[id(child)] for child in node.value]
        elif isinstance(node, yaml.MappingNode):
            children = [self._expanded[id(child)] for pair in node.value for child in pair]
        else:
            children = []
        size = 1 + sum(count for count, _ in children)
        height = 1 + max((deep for _, deep in children), default=0)
        self._expanded[id(node)] = (size, height)
        self._check_expansion(node, line)
        self._depth -= 1
        if part is not None:
            self._loc.pop()
        return node

    def _line(self) -> int:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        return int(event.start_mark.line) + 1

    def _check_expansion(self, node: yaml.Node, line: int) -> None:
        size, height = self._expanded[id(node)]
        if size > MAX_NODES:
            raise nodes_error(tuple(self._loc), line)
        if self._depth - 1 + height > MAX_DEPTH + 1:
            raise depth_error(tuple(self._loc), line)

    def construct_flow_int(self, node: yaml.ScalarNode) -> int | LongNumber:
        text = str(self.construct_scalar(node))
        return LongNumber(text) if len(text) > MAX_NUMBER_LENGTH else int(text.replace("_", ""))

    def construct_flow_float(self, node: yaml.ScalarNode) -> float | LongNumber:
        text = str(self.construct_scalar(node))
        return LongNumber(text) if len(text) > MAX_NUMBER_LENGTH else float(text)


_RESOLVERS: Final = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
        "-+.0123456789",
    ),
    (_MERGE_TAG, r"^(?:<<)$", ["<"]),
)
for _tag, _pattern, _first in _RESOLVERS:
    FlowYamlLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
FlowYamlLoader.add_constructor("tag:yaml.org,2002:int", FlowYamlLoader.construct_flow_int)
FlowYamlLoader.add_constructor("tag:yaml.org,2002:float", FlowYamlLoader.construct_flow_float)


def read_yaml(text: str, problems: Problems) -> tuple[Any, dict[Loc, int]]:
    """The data of a YAML document and a map from document paths to 1-based lines.

    Duplicate keys are added to ``problems``. Raises yaml.YAMLError on syntax errors.
    """
    loader = FlowYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Loc, int] = {}
        _index(node, (), lines, problems)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: Problems) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            child = (*loc, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.add(child, f'duplicate key "{key}"', "only the last value would be used; keep one", line=line)
            seen.add(key)
            lines.setdefault(child, line)
            _index(value_node, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*loc, index), lines, problems)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a flow")


def json_int(text: str) -> int | LongNumber:
    """``json.loads``'s ``parse_int``: a number longer than the limit is kept as text to refuse."""
    return LongNumber(text) if len(text) > MAX_NUMBER_LENGTH else int(text)


def json_float(text: str) -> float | LongNumber:
    """``json.loads``'s ``parse_float``, with the same length limit as ``json_int``."""
    return LongNumber(text) if len(text) > MAX_NUMBER_LENGTH else float(text)


def _limit_error(exc: LimitExceeded, source: str, lines: dict[Loc, int] | None = None) -> FlowValidationError:
    problems = Problems()
    problems.add(exc.loc, exc.message, exc.hint, line=exc.line)
    return FlowValidationError(problems.to_problems(lines), source=source)


def _syntax_error(message: str, line: int | None, source: str) -> FlowValidationError:
    return FlowValidationError([Problem(path="", message=message, line=line)], source=source)


def _guess_format(text: str, source: str) -> Literal["yaml", "json"]:
    lowered = source.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith((".yaml", ".yml")):
        return "yaml"
    if text.lstrip().startswith(("{", "[")):
        check_json_depth(text)  # nested too deep for either format
        try:
            json.loads(text, parse_int=json_int, parse_float=json_float)
        except ValueError:
            return "yaml"  # e.g. YAML flow style; YAML reports the syntax error if it is neither
        return "json"
    return "yaml"


def load_flow(
    text: str, source: str = "<flow>", fmt: Format = "auto", *, destinations: DestinationPolicy = DEFAULT_POLICY
) -> FlowDefinition:
    """Parse and validate a flow document written in YAML or JSON.

    ``fmt="auto"`` goes by the extension of ``source`` (.json, .yaml, .yml), else by the text.
    ``destinations`` are the webhook rules of the settings (default: public addresses only); a
    webhook to an address they refuse is a problem (see ``storeflow.flows.destinations``).
    Raises FlowValidationError listing every problem (with line numbers for YAML).
    """
    try:
        return _load(text, source, fmt, destinations)
    except LimitExceeded as exc:
        raise _limit_error(exc, source) from None


def _load(text: str, source: str, fmt: Format, destinations: DestinationPolicy) -> FlowDefinition:
    problems = Problems()
    lines: dict[Loc, int] = {}
    check_size(text)
    kind = _guess_format(text, source) if fmt == "auto" else fmt
    if kind == "json":
        check_json_depth(text)
        try:
            data = json.loads(text, parse_constant=_reject_constant, parse_int=json_int, parse_float=json_float)
        except json.JSONDecodeError as exc:
            raise _syntax_error(f"JSON syntax error: {exc.msg}", exc.lineno, source) from None
        except ValueError as exc:
            raise _syntax_error(f"JSON syntax error: {exc}", None, source) from None
    else:
        try:
            data, lines = read_yaml(text, problems)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
            raise _syntax_error(message, mark.line + 1 if mark else None, source) from None
        except yaml.YAMLError as exc:
            raise _syntax_error(f"YAML syntax error: {exc}", None, source) from None
    if not check_shape(data, problems):
        raise FlowValidationError(problems.to_problems(lines), source=source)
    flow = read_flow(data, problems)
    check_webhook_destinations(data, destinations, problems)
    if flow is None or problems:
        if not problems:  # pragma: no cover - every None comes with a problem
            problems.add((), "the flow is not valid")
        raise FlowValidationError(problems.to_problems(lines), source=source)
    return flow

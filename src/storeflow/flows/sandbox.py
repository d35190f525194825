"""The Jinja sandbox of message templates, with bounds on size, nesting, time and memory.

A flow author writes templates; they are parsed and compiled when a flow is validated (in the API
process) and rendered by the worker. Jinja's sandbox stops access to internals but not work: it
folds constant expressions at compile time (``{{ 'a'|center(100000000) }}`` ran at validation and
took seconds and hundreds of MB), its parser and compiler recurse (deep nesting raised
RecursionError), and renders had no time limit. Here:

* **Source** (:func:`source_problem`, :func:`tree_problem`): at most :data:`MAX_TEMPLATE_LENGTH`
  characters; before parsing, a scan of Jinja's tokens refuses more than :data:`MAX_TOKENS`
  tokens, blocks nested deeper than :data:`MAX_NESTING`, brackets nested deeper than
  :data:`MAX_NESTING`, long runs of unary operators and long ``a if b else c if ...`` chains (the
  parser recurses on each); after parsing, syntax trees deeper than :data:`MAX_TREE_DEPTH` (long
  filter or operator chains) or larger than :data:`MAX_TREE_NODES` are refused (Jinja's compile
  time grows with both).
* **Compile time**: nothing is evaluated. The environment is built with ``optimized=False`` (no
  constant folding), filters refuse to run outside a render and are context filters (which
  Jinja never folds), and ``*``, ``**``, ``%`` and ``+`` are intercepted. ``~`` and loops are
  rewritten into checked helpers (:func:`instrument`).
* **Render time** (:class:`Budget`): every filter result, method call result, operator result,
  ``~`` and ``{{ output }}`` is checked before or as it is built: no single value over
  :data:`MAX_VALUE` characters (``*`` builds at most :data:`MAX_SIZE`), width arguments
  (``center``, ``ljust``, ``%0100000000d``, ``{:>100000000}``, ``indent``, ``batch``...) are checked
  before the call, and the render as a whole may build at most :data:`MAX_WORK` characters plus
  loop iterations and calls, within :data:`MAX_RENDER_S` seconds of wall time.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from jinja2 import Environment, TemplateSyntaxError, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

MAX_TEMPLATE_LENGTH: Final = 100_000
"""Characters in one template."""
MAX_NESTING: Final = 20
"""Deepest nesting of blocks ({% if %}, {% for %} ...) and, separately, of brackets in an expression."""
MAX_UNARY_RUN: Final = 10
"""Most unary operators (not, -, +) in a row."""
MAX_TREE_DEPTH: Final = 50
"""Deepest syntax tree (a chain of 50 filters or operators is that deep)."""
MAX_TOKENS: Final = 5_000
"""Most tokens (names, operators, literals, tag delimiters; a run of fixed text is one) in one template."""
MAX_TREE_NODES: Final = 3_000
"""Most syntax tree nodes in one template. Checking and compiling cost about 0.2 ms per node; a long HTML
email has a few hundred."""
MAX_OUTPUT: Final = 1_000_000
"""Characters a render may produce before it is stopped."""
MAX_VALUE: Final = MAX_OUTPUT
"""Largest text or list one filter, method, operator or ``~`` may build."""
MAX_SIZE: Final = 100_000
"""Largest text or list that ``*`` may build in a template."""
MAX_WORK: Final = 10_000_000
"""Characters built (values and output) plus loop iterations and calls in one render."""
MAX_RENDER_S: Final = 2.0
"""Wall-clock seconds one render may take."""

_MAX_POWER_BITS: Final = 4096
_MAX_TAB: Final = 16
_MAX_SLICES: Final = 1000
LOOP_FILTER: Final = "storeflow:loop"
CONCAT_FILTER: Final = "storeflow:concat"

_OPENING_TAGS: Final = frozenset({"if", "for", "macro", "call", "filter", "with", "autoescape", "block", "trans"})
_PERCENT_SPEC: Final = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_NUMBER: Final = re.compile(r"\d+")
_PRECHECKED: Final = frozenset({"center", "indent", "format", "replace", "wordwrap", "batch", "slice", "tojson"})
_REFUSED_METHODS: Final = frozenset({"translate", "maketrans", "expandtabs"})
_WIDTH_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill"})

_budget: ContextVar[Budget | None] = ContextVar("storeflow_template_budget", default=None)


# --- the budget of one render ---------------------------------------------------------------------


@dataclass
class Budget:
    """What one render may still do: units of work (characters built, loop iterations, calls) and
    a wall-clock deadline (``time.monotonic``)."""

    work: int
    deadline: float
    limit_s: float
    charges: int = 0

    def charge(self, units: int) -> None:
        """Spend ``units``; raise SecurityError when the work or the time is used up. The clock is
        read every 64 charges (each charge stands for a bounded amount of work)."""
        self.work -= units
        self.charges += 1
        if self.work < 0:
            raise SecurityError(
                f"the template does too much work (more than {MAX_WORK:,} characters built, loop rounds and calls)"
            )
        if not self.charges & 63 and time.monotonic() > self.deadline:
            raise SecurityError(f"the template took longer than {self.limit_s:g} seconds")


class budget_for:
    """``with budget_for(seconds): ...``: a fresh :class:`Budget` for the renders inside."""

    def __init__(self, seconds: float = MAX_RENDER_S) -> None:
        self.budget = Budget(MAX_WORK, time.monotonic() + seconds, seconds)

    def __enter__(self) -> Budget:
        self._token = _budget.set(self.budget)
        return self.budget

    def __exit__(self, *exc: object) -> None:
        _budget.reset(self._token)


def _charge(units: int) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.charge(units)


def _running() -> Budget:
    """The current render's budget. Outside a render (Jinja folding constants while compiling) the
    checked helpers refuse to run, so that nothing is built at validation time."""
    budget = _budget.get()
    if budget is None:
        raise SecurityError("evaluated only while rendering")
    return budget


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 1


def _refuse_over(size: int, what: str, limit: int = MAX_VALUE) -> None:
    if size > limit:
        raise SecurityError(f"{what} would be longer than {limit:,}")


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


# --- checked operations ---------------------------------------------------------------------------


def _check_percent(fmt: str, args: Any) -> None:
    """``fmt % args`` may not build a huge text: no ``*`` widths, and widths, precisions and the
    formatted arguments must fit in :data:`MAX_VALUE`."""
    specs = _PERCENT_SPEC.findall(fmt)
    if any("*" in (width, precision) for width, precision in specs):
        raise SecurityError("% formatting with * widths is not allowed")
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    widest = max((_text_len(value) for value in values), default=0)
    pad = sum(int(width or 0) + int(precision or 0) for width, precision in specs)
    _refuse_over(len(fmt) + len(specs) * widest + pad, "the result of %")


def _check_format(template: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """``template.format(...)``: no nested fields in format specs, and the result must fit."""
    fields = 0
    pad = 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return  # format() raises the same error
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise SecurityError("nested fields in a format spec are not allowed")
        pad += sum(int(number) for number in _NUMBER.findall(spec or ""))
    widest = max((_text_len(value) for value in (*args, *kwargs.values())), default=0)
    _refuse_over(len(template) + fields * widest + pad, "the result of format")


def _check_str_method(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a string method call that would build a huge text, before it runs. Returns the
    arguments to call it with (``join``'s items are read once, here, and passed on as a list)."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(method, "__name__", "")
    if name in _REFUSED_METHODS:
        raise SecurityError(f"{name}() is not allowed in templates")
    if name in _WIDTH_METHODS:
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int):
            _refuse_over(width, f"the result of {name}()")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        items = list(args[0])
        total = sum(_text_len(item) for item in items) + len(owner) * max(len(items) - 1, 0)
        _refuse_over(total, "the result of join()")
        return (items, *args[1:])
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, str | bytes) or not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return
    hits = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _refuse_over(len(text) + hits * max(len(new) - len(old), 0), "the result of replace")


def _too_big(operator_name: str, left: Any, right: Any) -> str | None:
    if operator_name == "**":
        huge = (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and abs(left).bit_length() * right > _MAX_POWER_BITS
        )
        return "the result of ** would be too large" if huge else None
    if operator_name == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | Sequence) and isinstance(times, int) and len(seq) * times > MAX_SIZE:
                return f"the result of * would be longer than {MAX_SIZE}"
    sized = (str, list, tuple)
    joined = operator_name == "+" and isinstance(left, sized) and isinstance(right, sized)
    if joined and len(left) + len(right) > MAX_VALUE:
        return f"the result of + would be longer than {MAX_VALUE:,}"
    if operator_name == "%" and isinstance(left, str):
        _check_percent(left, right)
    return None


# --- filters ----------------------------------------------------------------------------------------


def _precheck_filter(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse arguments that would make filter ``name`` build a huge value, before it runs.
    ``args`` starts with the filtered value."""

    def arg(index: int, key: str, default: Any = None) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    value = arg(0, "value")
    if name == "center":
        width = arg(1, "width", 80)
        if isinstance(width, int):
            _refuse_over(width, "the result of center")
    elif name == "indent":
        width = arg(1, "width", 4)
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        lines = str(value).count("\n") + 1
        _refuse_over(_text_len(value) + lines * pad, "the result of indent")
    elif name == "format":
        if isinstance(value, str):
            _check_percent(value, dict(kwargs) if kwargs else tuple(args[1:]))
    elif name == "replace":
        _check_replace(value, arg(1, "old"), arg(2, "new"), arg(3, "count", -1))
    elif name == "wordwrap":
        width = arg(1, "width", 79)
        wrapstring = arg(3, "wrapstring") or "\n"
        if isinstance(width, int) and width > 0 and isinstance(wrapstring, str):
            size = _text_len(value)
            _refuse_over(size + (size // width + 1) * len(wrapstring), "the result of wordwrap")
    elif name in ("batch", "slice"):
        count = arg(1, "linecount" if name == "batch" else "slices", 1)
        fill = arg(2, "fill_with")
        limit = _MAX_SLICES if name == "slice" or fill is not None else MAX_VALUE
        if isinstance(count, int) and count > limit:
            raise SecurityError(f"{name} into more than {limit:,} is not allowed")
    elif name == "tojson":
        indent = arg(1, "indent")
        if isinstance(indent, int) and indent > _MAX_TAB:
            raise SecurityError(f"tojson indent of more than {_MAX_TAB} is not allowed")


def _join_args(args: list[Any], kwargs: dict[str, Any]) -> None:
    """``join``: materialize the items (an iterator would be used up) and check the result size."""
    if args:
        items = list(args[0])
        args[0] = items
        glue = args[1] if len(args) > 1 else kwargs.get("d", "")
        total = sum(_text_len(item) for item in items) + _text_len(glue) * max(len(items) - 1, 0)
        _refuse_over(total, "the result of join")


def checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` that runs only while rendering, with its arguments checked and its result charged.

    The wrapper takes the template context (and hands ``func`` what it asked for): Jinja's
    optimizer does not even try to fold a context filter, which keeps compiling long filter
    chains linear.
    """
    wants = _PassArg.from_obj(func)
    precheck: Callable[[list[Any], dict[str, Any]], None] | None = None
    if name == "join":
        precheck = _join_args
    elif name in _PRECHECKED:
        precheck = functools.partial(_precheck_filter, name)

    def run(context: Context, *args: Any, **kwargs: Any) -> Any:
        budget = _budget.get()
        if budget is None:
            raise SecurityError("evaluated only while rendering")
        rest: Any = args
        if precheck is not None:
            rest = list(args)
            precheck(rest, kwargs)
        if wants is None:
            result = func(*rest, **kwargs)
        elif wants is _PassArg.context:
            result = func(context, *rest, **kwargs)
        elif wants is _PassArg.eval_context:
            result = func(context.eval_ctx, *rest, **kwargs)
        else:
            result = func(context.environment, *rest, **kwargs)
        size = len(result) if type(result) is str else _size(result)
        if size > MAX_VALUE:
            _refuse_over(size, f"the result of the {name} filter")
        budget.charge(size)
        return result

    return pass_context(functools.wraps(func)(run))


class _Metered:
    """An iterable whose iteration charges the render's budget one unit per item."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        budget = _running()
        for item in self._items:
            budget.charge(1)
            yield item


@pass_context
def _loop(context: Context, items: Any) -> _Metered:
    _running()
    return _Metered(items)


@pass_context
def _concat(context: Context, items: list[Any]) -> str:
    budget = _running()
    size = sum(_text_len(item) for item in items)
    _refuse_over(size, "the result of ~")
    budget.charge(size)
    return markup_join(items) if context.eval_ctx.autoescape else str_join(items)


def finalize(value: Any) -> Any:
    """Every ``{{ value }}`` passes here: None shows as nothing, and its size is charged."""
    if value is None:
        return ""
    budget = _budget.get()
    if budget is not None:
        size = len(value) if isinstance(value, str) else 1 if isinstance(value, int | float) else _text_len(value)
        budget.charge(size)
    return value


# --- the environment --------------------------------------------------------------------------------


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with storeflow's limits (see the module docstring): unsafe attributes
    raise at once (instead of rendering as an empty text), operators and calls are checked."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        problem = _too_big(operator, left, right)
        if problem is not None:
            raise SecurityError(problem)
        result = super().call_binop(context, operator, left, right)
        _charge(_size(result))
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call from a template (methods, macros, ``loop(...)``) costs one unit, and string
        methods that pad or repeat are checked before they run."""
        _charge(1)
        args = _check_str_method(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        _charge(_size(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            named = args[0] if is_map and args and isinstance(args[0], Mapping) else kwargs
            _check_format(str(template), () if is_map else args, named)
            return wrapped(*args, **kwargs)

        return functools.update_wrapper(checked, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} is not allowed")


def install_limits(env: Environment) -> None:
    """Wrap every filter of ``env`` with :func:`checked_filter` and add the loop and ``~`` helpers."""
    env.filters = {name: checked_filter(name, func) for name, func in env.filters.items()}
    env.filters[LOOP_FILTER] = _loop
    env.filters[CONCAT_FILTER] = _concat


# --- source checks and rewriting --------------------------------------------------------------------


def source_problem(source: str, env: Environment) -> tuple[str, str | None] | None:
    """A (message, hint) when ``source`` is too long or nested too deeply to parse, else None.

    Uses Jinja's lexer (which does not recurse); syntax errors are left to the parser.
    """
    if len(source) > MAX_TEMPLATE_LENGTH:
        return (
            f"the template is {len(source):,} characters long (at most {MAX_TEMPLATE_LENGTH:,})",
            "shorten it; move long fixed text out of the flow",
        )
    hint = "nest fewer blocks and brackets; compute parts in separate {% set %} lines"
    blocks = brackets = unary = conditionals = tokens = 0
    tag: str | None = None
    assigns = False
    try:
        for line, kind, value in env.lex(source):
            if kind == "whitespace":
                continue
            tokens += 1
            if tokens > MAX_TOKENS:
                return (
                    f"the template has more than {MAX_TOKENS:,} parts (variables, operators, filters, tags)",
                    "split it into smaller templates or simplify the expressions",
                )
            if kind in ("block_begin", "variable_begin"):
                tag, assigns, brackets, unary, conditionals = ("" if kind == "block_begin" else None), False, 0, 0, 0
                continue
            if kind == "block_end" and tag is not None:
                if tag in _OPENING_TAGS or (tag == "set" and not assigns):
                    blocks += 1
                    if blocks > MAX_NESTING:
                        return f"blocks are nested more than {MAX_NESTING} deep on line {line}", hint
                elif tag.startswith("end"):
                    blocks -= 1
                tag = None
                continue
            if tag == "" and kind == "name":
                tag = value
                continue
            if kind == "operator" and value in "([{":
                brackets += 1
                if brackets > MAX_NESTING:
                    return f"brackets are nested more than {MAX_NESTING} deep on line {line}", hint
            elif kind == "operator" and value in ")]}":
                brackets -= 1
            elif kind == "operator" and value == "=":
                assigns = True
            if (kind == "name" and value == "not") or (kind == "operator" and value in ("-", "+")):
                unary += 1
                if unary > MAX_UNARY_RUN:
                    return f"more than {MAX_UNARY_RUN} unary operators in a row on line {line}", hint
            else:
                unary = 0
            if kind == "name" and value == "if":
                conditionals += 1
                if conditionals > MAX_NESTING:
                    return f"more than {MAX_NESTING} chained if/else expressions on line {line}", hint
    except TemplateSyntaxError:
        return None
    return None


def tree_problem(ast: nodes.Template) -> tuple[str, str | None] | None:
    """A (message, hint) when the syntax tree is deeper than :data:`MAX_TREE_DEPTH` or larger
    than :data:`MAX_TREE_NODES` (checked without recursion; Jinja's compiler recurses on it)."""
    stack: list[tuple[nodes.Node, int]] = [(ast, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_TREE_NODES:
            return (
                f"the template has more than {MAX_TREE_NODES:,} syntax nodes (variables, operators, filters, tags)",
                "split it into smaller templates or simplify the expressions",
            )
        if depth > MAX_TREE_DEPTH:
            where = f" on line {node.lineno}" if node.lineno else ""
            return (
                f"the template is nested too deeply{where} (more than {MAX_TREE_DEPTH} levels)",
                "use shorter chains of filters and operators; compute parts in separate {% set %} lines",
            )
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return None


def instrument(ast: nodes.Template, env: Environment) -> nodes.Template:
    """Rewrite ``ast`` for rendering with limits: every loop iterates through the metering helper
    and every ``~`` goes through the checked join. Returns the rewritten tree."""
    rewritten = _Instrument().visit(ast)
    assert isinstance(rewritten, nodes.Template)
    rewritten.set_environment(env)
    return rewritten


class _Instrument(NodeTransformer):
    """One pass over the tree (its depth is bounded by :data:`MAX_TREE_DEPTH`)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        loop = self.generic_visit(node)
        assert isinstance(loop, nodes.For)
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        return loop

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        concat = self.generic_visit(node)
        assert isinstance(concat, nodes.Concat)
        items = nodes.List(list(concat.nodes), lineno=node.lineno)
        return nodes.Filter(items, CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


def iterate(items: Iterable[str], limit: int, on_over: Callable[[], NoReturn]) -> Iterator[str]:
    """Pass through the output chunks of a render, calling ``on_over`` once ``limit`` characters
    have been produced. (Values were charged by :func:`finalize` as they were output; fixed text
    is bounded by the template's length per loop round, and loop rounds are charged.)"""
    produced = 0
    for chunk in items:
        produced += len(chunk)
        if produced > limit:
            on_over()
        yield chunk

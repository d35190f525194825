"""Message templates: Jinja2 in its sandbox, checked when a flow is validated, rendered per run.

Templates can use only the variables in :data:`TEMPLATE_ROOTS`, Jinja's built-in filters and tests,
and the storeflow filters (money, number, percent, date, datetime; see ``formatting``)::

    problems = check_template("Hi {{ profile.first_name or 'there' }}")   # [] when fine
    context = build_context(record, locale="en_US", timezone="UTC", currency="USD",
                            flow={"id": "welcome", "name": "Welcome"}, links={"unsubscribe": url})
    html = render(source, context, autoescape=True, part="html")           # TemplateError on failure

Rendering runs in Jinja's immutable sandbox: internal attributes (``__class__``, ``mro`` ...) raise
a SecurityError, records cannot be changed, the output is capped at :data:`MAX_OUTPUT` characters,
and every failure becomes a :class:`TemplateError`. Parsing, validating and rendering are bounded
in size, nesting, time and memory (see ``storeflow.flows.sandbox``): ``{{ 'a'|center(10**8) }}``
or a render looping for minutes is refused, not run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final, NoReturn

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError

from storeflow.errors import PermanentActionError
from storeflow.flows import sandbox
from storeflow.flows.bounded_cache import BoundedCache
from storeflow.flows.formatting import FILTERS, FORMAT_KEY, formatting_for
from storeflow.flows.paths import SHORTHAND_ROOTS
from storeflow.flows.sandbox import (
    MAX_RENDER_S,
    Sandbox,
    budget_for,
    finalize,
    install_limits,
    instrument,
    iterate,
    source_problem,
    tree_problem,
)
from storeflow.flows.vocabulary import FIELD_ROOTS, did_you_mean

TEMPLATE_ROOTS: Final[tuple[str, ...]] = (
    "profile",
    "event",
    "order",
    "cart",
    "product",
    "run",
    "flow",
    "store",
    "links",
)
"""The only variables a template may use."""

MAX_OUTPUT: Final = sandbox.MAX_OUTPUT
"""Characters a render may produce before it is stopped."""
MAX_SIZE: Final = sandbox.MAX_SIZE
"""Largest text or list that ``*`` may build in a template."""

_JINJA_GLOBALS: Final = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace"})
_ATTRIBUTE_FILTERS: Final = frozenset({"attr", "selectattr", "rejectattr"})
_KNOWN_HINTS: Final = {
    "filter": "use one of Jinja's built-in filters or money, number, percent, date, datetime",
    "test": "use one of Jinja's built-in tests, e.g. defined, none, number, string",
}
_INCLUDES: Final = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class TemplateError(PermanentActionError):
    """A template failed to render; it would fail the same way on a retry.

    ``part`` names the template (subject, html, text, ...), ``reason`` what went wrong.
    """

    def __init__(self, part: str, reason: str) -> None:
        self.part = part
        self.reason = reason
        label = "the template" if part == "template" else f"the {part} template"
        super().__init__(f"{label} failed: {reason}")


class _Sandbox(Sandbox):
    """The limited sandbox (see ``storeflow.flows.sandbox``) with a fast path for record keys."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A record's own key (``cart.items``, ``profile.first_name``): what the sandbox would return
        # after its checks (a view, a tuple or a plain value), without them; they were about half
        # the time of a render. Anything else takes the sandbox's way.
        if type(obj) is RecordView and not attribute.startswith("_"):
            try:
                return RecordView._lookup(obj, attribute)
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _finalize(value: Any) -> Any:  # a filter stand-in for the probe environment below
    return "" if value is None else value


def _json_default(value: Any) -> Any:
    """``tojson`` for record values: views as objects, exact decimals as text, date-times as ISO."""
    if isinstance(value, RecordView):
        return dict(value._data)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def _environment(*, autoescape: bool) -> _Sandbox:
    env = _Sandbox(
        autoescape=autoescape,
        undefined=ChainableUndefined,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        optimized=False,  # no constant folding: nothing runs at compile time, and compiling stays linear
    )
    env.globals.clear()  # only the roots: no range, cycler, joiner, lipsum, namespace, dict
    env.filters.update(FILTERS)
    install_limits(env)
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
    return env


_TEXT_ENV: Final = _environment(autoescape=False)
_HTML_ENV: Final = _environment(autoescape=True)


_COMPILED: Final[BoundedCache[Template]] = BoundedCache(max_entries=512, max_chars=4_000_000)
_CHECKED: Final[BoundedCache[tuple[tuple[str, str | None], ...]]] = BoundedCache(max_entries=2048, max_chars=4_000_000)


class _Refused(Exception):
    """A template over a bound; ``problem`` is (message, hint)."""

    def __init__(self, problem: tuple[str, str | None]) -> None:
        super().__init__(problem[0])
        self.problem = problem


def _parse(source: str, env: _Sandbox) -> nodes.Template:
    """Parse ``source`` within the bounds; raises _Refused or TemplateSyntaxError."""
    problem = source_problem(source, env)
    if problem is not None:
        raise _Refused(problem)
    try:
        ast = env.parse(source)
    except RecursionError:  # a safety net: the scan above keeps the parser well inside the limit
        raise _Refused(("the template is nested too deeply", "nest fewer blocks and brackets")) from None
    problem = tree_problem(ast)
    if problem is not None:
        raise _Refused(problem)
    return ast


def _compile(source: str, autoescape: bool) -> Template:
    """The compiled template (cached): parsed within the bounds, loops and ``~`` instrumented."""

    def make() -> Template:
        env = _HTML_ENV if autoescape else _TEXT_ENV
        return env.from_string(instrument(_parse(source, env), env))

    return _COMPILED.get((source, autoescape), len(source), make)


# --- checking --------------------------------------------------------------------------------


def _where(node: nodes.Node, multiline: bool) -> str:
    return f" on line {node.lineno}" if multiline and node.lineno else ""


def _unsafe_name(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


def _accessed(node: nodes.Node) -> str | None:
    """The name a Getattr or constant Getitem reads, else None."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _first_unsafe(node: nodes.Node) -> bool:
    """Whether ``node`` reads an internal name and nothing before it in the chain does
    (``x.__class__.__mro__`` is reported once, at ``__class__``)."""
    name = _accessed(node)
    if name is None or not _unsafe_name(name):
        return False
    inner = getattr(node, "node", None)
    while isinstance(inner, nodes.Getattr | nodes.Getitem):
        inner_name = _accessed(inner)
        if inner_name is not None and _unsafe_name(inner_name):
            return False
        inner = inner.node
    return True


def _message(exc: TemplateSyntaxError) -> str:
    text = (exc.message or "invalid template").rstrip(".")
    return text[:1].lower() + text[1:]


def _unsafe_attribute(name: str, node: nodes.Node, multiline: bool) -> tuple[str, str | None]:
    return (
        f'"{name}" cannot be used in a template{_where(node, multiline)}',
        "names starting with _ are internal; use the record's fields, e.g. profile.first_name",
    )


def _unknown_variable(name: str, node: nodes.Node, multiline: bool) -> tuple[str, str | None]:
    message = f'unknown variable "{name}"{_where(node, multiline)}'
    hint = did_you_mean(name, TEMPLATE_ROOTS, cutoff=0.6)
    if hint is None and name in _JINJA_GLOBALS:
        hint = f"Jinja's {name} is not available in storeflow templates"
    if hint is None:
        roots = ", ".join(TEMPLATE_ROOTS)
        hint = f'variables start with one of {roots}; e.g. profile.{name} for the profile property "{name}"'
    return message, hint


def _const_texts(node: nodes.Filter | nodes.Test) -> Iterator[str]:
    if node.name in _ATTRIBUTE_FILTERS and node.args and isinstance(node.args[0], nodes.Const):
        yield str(node.args[0].value)
    for keyword in node.kwargs:
        if keyword.key == "attribute" and isinstance(keyword.value, nodes.Const):
            yield str(keyword.value.value)


def _names(ast: nodes.Template, kind: type[nodes.Filter | nodes.Test]) -> set[str]:
    return {node.name for node in ast.find_all(kind)}


def _undeclared(ast: nodes.Template, unknown_filters: set[str], unknown_tests: set[str]) -> set[str]:
    """Variables the template reads but does not set. Jinja finds them with its code generator,
    which stops at an unknown filter or test; a probe environment knows those names."""
    env: Any = _TEXT_ENV
    if unknown_filters or unknown_tests:
        env = _TEXT_ENV.overlay()
        env.filters = {**_TEXT_ENV.filters, **dict.fromkeys(unknown_filters, _finalize)}
        env.tests = {**_TEXT_ENV.tests, **dict.fromkeys(unknown_tests, _finalize)}
    ast.set_environment(env)
    try:
        codegen = _Tracking(env)
        codegen.visit(ast)
        return codegen.undeclared_identifiers - set(TEMPLATE_ROOTS)
    finally:
        ast.set_environment(_TEXT_ENV)


class _Tracking(meta.TrackingCodeGenerator):
    """``meta.find_undeclared_variables``'s code generator without the optimizer: folding constants
    is quadratic in the nesting of an expression, and nothing should be evaluated when checking."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.optimizer = None


def _walk(ast: nodes.Template, multiline: bool) -> list[tuple[int, str, str | None]]:
    env = _TEXT_ENV
    unknown_filters = _names(ast, nodes.Filter) - set(env.filters)
    unknown_tests = _names(ast, nodes.Test) - set(env.tests)
    undeclared = _undeclared(ast, unknown_filters, unknown_tests)
    found: list[tuple[int, str, str | None]] = []
    reported: set[str] = set()
    for node in ast.find_all(nodes.Node):
        line = node.lineno or 0
        problem: tuple[str, str | None] | None = None
        if isinstance(node, nodes.Name) and node.name in undeclared and node.name not in reported:
            reported.add(node.name)
            problem = _unknown_variable(node.name, node, multiline)
        elif isinstance(node, nodes.Getattr | nodes.Getitem):
            if _first_unsafe(node):
                problem = _unsafe_attribute(str(_accessed(node)), node, multiline)
        elif isinstance(node, nodes.Filter | nodes.Test):
            kind, known = ("filter", env.filters) if isinstance(node, nodes.Filter) else ("test", env.tests)
            if node.name not in known:
                hint = did_you_mean(node.name, known, cutoff=0.6) or _KNOWN_HINTS[kind]
                problem = (f'unknown {kind} "{node.name}"{_where(node, multiline)}', hint)
            else:
                unsafe = next((text for text in _const_texts(node) if _unsafe_name(text)), None)
                if unsafe is not None:
                    problem = _unsafe_attribute(unsafe, node, multiline)
        elif isinstance(node, _INCLUDES):
            problem = (
                f"templates cannot include, import or extend other templates{_where(node, multiline)}",
                "write the whole message in this template",
            )
        if problem is not None:
            found.append((line, *problem))
    return found


def _check(source: str) -> tuple[tuple[str, str | None], ...]:
    return _CHECKED.get(source, len(source), lambda: _find_problems(source))


def _find_problems(source: str) -> tuple[tuple[str, str | None], ...]:
    multiline = "\n" in source.strip()
    try:
        ast = _parse(source, _TEXT_ENV)
    except _Refused as exc:
        return (exc.problem,)
    except TemplateSyntaxError as exc:
        where = f" on line {exc.lineno}" if exc.lineno else ""
        hint = "write variables as {{ profile.first_name }} and tags as {% if ... %} ... {% endif %}"
        return ((f"template syntax error{where}: {_message(exc)}", hint),)
    found = _walk(ast, multiline)
    if not found:
        try:
            _compile(source, False)
        except TemplateSyntaxError as exc:  # compile-time checks, e.g. assigning to a reserved name
            return ((f"template error: {_message(exc)}", None),)
        except _Refused as exc:  # pragma: no cover - _parse above refused the same source first
            return (exc.problem,)
    ordered = [(message, hint) for _, message, hint in sorted(found, key=itemgetter(0))]
    return tuple(dict.fromkeys(ordered))  # the same problem twice (a filter used twice) once


def check_template(source: str) -> list[tuple[str, str | None]]:
    """Every problem of a template as (message, hint); empty when the template is fine.

    Reports syntax errors (with the template line), variables that are not in
    :data:`TEMPLATE_ROOTS` (with a did-you-mean hint), unknown filters and tests, internal names
    such as ``__class__``, include/import/extends, and templates over the bounds (length,
    nesting). Nothing in the template is evaluated. Results are cached by source.
    """
    if not isinstance(source, str):
        return [("a template must be text", None)]
    return list(_check(source))


# --- rendering -------------------------------------------------------------------------------


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    autoescape: bool,
    part: str = "template",
    time_limit_s: float = MAX_RENDER_S,
) -> str:
    """Render ``source`` with ``context`` (from :func:`build_context`) in the sandbox.

    ``autoescape=True`` for HTML bodies, False for subjects, plain text and SMS. ``part`` names the
    template in errors. Raises :class:`TemplateError` for anything that goes wrong (syntax, a
    sandbox violation, a filter given the wrong value, output over :data:`MAX_OUTPUT`, too much
    work or more than ``time_limit_s`` seconds), never another exception.
    """
    if not isinstance(source, str):  # e.g. a `to` field path: resolve it with render_recipient
        raise TemplateError(part, f"a template must be text, not {type(source).__name__}")

    def too_long() -> NoReturn:
        raise TemplateError(part, f"the output is longer than {MAX_OUTPUT} characters")

    try:
        template = _compile(source, autoescape)
        with budget_for(time_limit_s):
            return "".join(iterate(template.generate(dict(context)), MAX_OUTPUT, too_long))
    except TemplateError:
        raise
    except _Refused as exc:
        raise TemplateError(part, exc.problem[0]) from None
    except SecurityError as exc:
        raise TemplateError(part, f"not allowed: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateError(part, f"syntax error on line {exc.lineno}: {exc.message}") from None
    except Exception as exc:  # any runtime failure inside the template; the caller only sees TemplateError
        reason = str(exc) or type(exc).__name__
        raise TemplateError(part, reason[:500]) from exc


# --- context ---------------------------------------------------------------------------------


_PLAIN: Final = frozenset({str, int, float, bool, Decimal, type(None), dt.datetime, dt.date})


def view_of(value: Any) -> Any:
    """``value`` made read-only for templates: mappings become :class:`RecordView`, lists tuples."""
    kind = type(value)
    if kind in _PLAIN:  # most values; the checks below go through the Mapping ABC, which is slow
        return value
    if kind is dict:
        return RecordView(value)
    if isinstance(value, RecordView):
        return value
    if isinstance(value, Mapping):
        return RecordView(value)
    if isinstance(value, list | tuple):
        return tuple(view_of(item) for item in value)
    return value


class RecordView(Mapping[str, Any]):
    """A read-only view of a record dict for templates.

    ``view.key`` and ``view["key"]`` read the record's keys, and a key of the record shadows the
    mapping's methods (``cart.items`` is the cart's items, not ``dict.items``). With ``shorthand``
    (the profile and event records) a key that is not in the record is looked up in its
    ``properties``, as in conditions: ``profile.first_name`` reads ``profile.properties.first_name``.
    Nested mappings and lists are returned as views and tuples, so templates cannot change records.
    """

    __slots__ = ("_data", "_shorthand")

    def __init__(self, data: Mapping[str, Any], *, shorthand: bool = False) -> None:
        self._data = data
        self._shorthand = shorthand

    def _lookup(self, key: str) -> Any:
        data = self._data
        if key in data:
            return view_of(data[key])
        if self._shorthand:
            props = data.get("properties")
            if isinstance(props, Mapping) and key in props:
                return view_of(props[key])
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        return self._lookup(key)

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            try:
                return object.__getattribute__(self, "_lookup")(name)
            except KeyError:
                pass
        return object.__getattribute__(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(dict(self._data))


def build_context(
    record: Mapping[str, Any],
    *,
    locale: str,
    timezone: str,
    currency: str,
    flow: Mapping[str, Any],
    links: Mapping[str, str],
) -> dict[str, Any]:
    """The variables of a render: the run's records, ``flow``, ``store`` and ``links``.

    ``record`` maps the roots event, profile, order, cart, product and run to record dicts (see
    storeflow.engine.records); missing or None roots are left undefined, so
    ``{{ profile.first_name or "there" }}`` works without a profile. ``locale``, ``timezone`` and
    ``currency`` are the store's; the filters use the profile's locale and time zone when it has
    valid ones, and the order's (else the cart's, else the store's) currency.
    """
    context: dict[str, Any] = {}
    for root in FIELD_ROOTS:
        value = record.get(root)
        if isinstance(value, Mapping):
            context[root] = RecordView(value, shorthand=root in SHORTHAND_ROOTS)
    record_currency = next(
        (
            str(value["currency"])
            for value in (record.get("order"), record.get("cart"))
            if isinstance(value, Mapping) and value.get("currency")
        ),
        currency,
    )
    context["flow"] = RecordView(dict(flow))
    context["store"] = RecordView({"locale": locale, "timezone": timezone, "currency": currency})
    context["links"] = RecordView(dict(links))
    profile = record.get("profile")
    context[FORMAT_KEY] = formatting_for(
        profile if isinstance(profile, Mapping) else None,
        locale=locale,
        timezone=timezone,
        currency=record_currency,
    )
    return context

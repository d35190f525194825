"""Templates are bounded in size, nesting, time and memory when checked, compiled and rendered."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from storeflow.errors import FlowValidationError
from storeflow.flows import TemplateError, check_template, load_flow, render
from storeflow.flows import templates as templates_module
from storeflow.flows.sandbox import (
    MAX_NESTING,
    MAX_TEMPLATE_LENGTH,
    MAX_TOKENS,
    MAX_TREE_DEPTH,
    MAX_TREE_NODES,
    MAX_WORK,
)

# Before the bounds, the first two took 1.5 s and 400-500 MB each when merely checked.
HUGE = [
    "{{ '%0100000000d' % 1 }}",
    "{{ 'a'|center(100000000) }}",
    "{{ 'a'.ljust(100000000) }}",
    "{{ 'a'.zfill(100000000) }}",
    "{{ '%0100000000d'|format(1) }}",
    "{{ '%*d' % (100000000, 1) }}",
    "{{ '{:>100000000}'.format(1) }}",
    "{{ '{:>{}}'.format(1, 100000000) }}",
    "{{ '{0:>100000000}'.format_map({'0': 1}) }}",
    "{{ 'a\nb'|indent(100000000) }}",
    "{{ ('a' * 100000)|replace('a', 'a' * 100000) }}",
    "{{ ('a' * 100000).replace('a', 'a' * 100000) }}",
    "{{ ('a' * 100000)|join('x' * 100000) }}",
    "{{ ('x' * 100000).join('a' * 100000) }}",
    "{{ ('a' * 99999)|wordwrap(1, wrapstring='x' * 100000) }}",
    "{{ [1]|batch(100000000, 0)|list }}",
    "{{ [1]|slice(100000000, 0)|list }}",
    "{{ [1]|tojson(indent=100000000) }}",
    "{{ 'aaaa'.translate({97: 'x' * 100000}) }}",
    "{% set a = 'x' * 100000 %}{% set b = a~a~a~a~a~a~a~a~a~a~a %}{{ b|length }}",
    "{% set a = 'x' * 100000 %}{% set b = a+a+a+a+a+a+a+a+a+a+a %}{{ b|length }}",
    "{% set a = 'x' * 100000 %}{% set b = [a]+[a] %}{% set c = (b+b+b+b+b+b+b+b+b+b+b)|join %}{{ c|length }}",
]


@contextmanager
def bounded(seconds: float = 2.0, megabytes: float = 40) -> Iterator[None]:
    """The block must finish within ``seconds`` and allocate at most ``megabytes`` at its peak."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f}s"
    assert peak < megabytes * 1_000_000, f"peaked at {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("source", HUGE)
def test_validating_evaluates_nothing(source: str) -> None:
    with bounded(megabytes=5):
        assert check_template(source) == []


@pytest.mark.parametrize("source", HUGE)
def test_rendering_refuses_huge_values_before_building_them(source: str) -> None:
    with bounded(), pytest.raises(TemplateError) as info:
        render(source, {}, autoescape=True, part="html")
    assert info.value.part == "html"
    assert "not allowed" in info.value.reason


def test_ordinary_formatting_still_works() -> None:
    source = (
        "{{ '%5.2f|%-4s|%d' % (3.14159, 'ab', 7) }} {{ '{:>4}|{}'.format('x', 2) }} "
        "{{ 'ab'|center(6) }}|{{ [1, 2, 3]|join(',') }}|{{ 'a' ~ 1 ~ 'b' }}|{{ 'x' * 3 + 'y' }}|"
        "{{ 'a-b'.replace('-', '+') }}|{{ '%s=%s'|format('k', 'v') }}|{{ [1, 2, 3]|batch(2)|list|length }}|"
        "{% for i in [1, 2, 3] %}{{ loop.index }}/{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}"
    )
    assert check_template(source) == []
    assert render(source, {}, autoescape=False) == (" 3.14|ab  |7    x|2   ab  |1,2,3|a1b|xxxy|a+b|k=v|2|1/3,2/3,3/3")


def test_join_reads_generators_once() -> None:
    source = "{{ '-'.join(['a', 'b']|map('upper')) }} {{ ['c', 'd']|map('upper')|join('+') }}"
    assert render(source, {}, autoescape=True) == "A-B C+D"


def test_html_concatenation_still_escapes() -> None:
    assert render("{{ '<b>' ~ 'x' }}", {}, autoescape=True) == "&lt;b&gt;x"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{% if 1 %}" * 500 + "x" + "{% endif %}" * 500, f"blocks are nested more than {MAX_NESTING}"),
        ("{% for a in [1] %}" * 500 + "x" + "{% endfor %}" * 500, f"blocks are nested more than {MAX_NESTING}"),
        ("{{ " + "(" * 500 + "1" + ")" * 500 + " }}", f"brackets are nested more than {MAX_NESTING}"),
        ("{{ " + "[" * 500 + "]" * 500 + " }}", f"brackets are nested more than {MAX_NESTING}"),
        ("{{ " + "not " * 2000 + "1 }}", "unary operators in a row"),
        ("{{ " + "-" * 2000 + "1 }}", "unary operators in a row"),
        ("{{ " + "1 if x else " * 500 + "2 }}", "chained if/else"),
        ("{{ 1" + "|string" * 1000 + " }}", f"more than {MAX_TREE_DEPTH} levels"),
        ("{{ 1" + "+1" * 1000 + " }}", f"more than {MAX_TREE_DEPTH} levels"),
        ("{{ profile" + ".a" * 1000 + " }}", f"more than {MAX_TREE_DEPTH} levels"),
        ("{{ 1 }}" * (MAX_TOKENS // 3 + 1), f"more than {MAX_TOKENS:,} parts"),
        ("{{ 1+1+1+1 }}" * (MAX_TOKENS // 9), f"more than {MAX_TREE_NODES:,} syntax nodes"),
        ("x" * (MAX_TEMPLATE_LENGTH + 1), f"at most {MAX_TEMPLATE_LENGTH:,}"),
    ],
)
def test_deep_or_large_templates_are_refused_quickly_with_a_hint(source: str, words: str) -> None:
    with bounded():
        [(message, hint)] = check_template(source)
    assert words in message
    assert hint
    with bounded(), pytest.raises(TemplateError, match="template failed: ") as info:
        render(source, {}, autoescape=False)
    assert "recursion" not in info.value.reason


def test_nesting_up_to_the_limits_is_fine() -> None:
    source = (
        "{% if 1 %}" * MAX_NESTING
        + "{{ "
        + "(" * MAX_NESTING
        + "not " * 9
        + "1"
        + ")" * MAX_NESTING
        + " }}"
        + "{% endif %}" * MAX_NESTING
    )
    assert check_template(source) == []
    assert render(source, {}, autoescape=False) == "False"


def test_a_flow_with_a_deep_template_names_the_field() -> None:
    step = {"action": "email", "subject": "Hi", "html": "{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}"}
    doc = {"id": "f", "name": "F", "trigger": {"event": "order_placed"}, "steps": [step]}
    with bounded(), pytest.raises(FlowValidationError) as info:
        load_flow(json.dumps(doc), source="f.json")
    [problem] = info.value.problems
    assert problem.path == "steps[0].html"
    assert "brackets are nested" in problem.message


LOOPS = "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}"


def test_a_render_stops_at_its_time_limit() -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"took longer than 0\.2 seconds"):
        render(LOOPS, {"s": "x" * 1000}, autoescape=False, time_limit_s=0.2)
    assert time.perf_counter() - started < 5


def test_a_render_stops_when_its_work_is_used_up() -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="too much work"):
        render(LOOPS, {"s": "x" * 1000}, autoescape=False, time_limit_s=600)
    assert time.perf_counter() - started < 60


def test_output_kept_in_a_macro_is_bounded_too() -> None:
    # Output built inside a macro or {% set %} block is not streamed; it is charged as it is built.
    source = "{% macro m() %}{% for x in s %}{{ s }}{% endfor %}{% endmacro %}{{ m()|length }}"
    with bounded(megabytes=80), pytest.raises(TemplateError, match="too much work"):
        render(source, {"s": "x" * 100_000}, autoescape=False)


def test_recursive_macros_are_stopped() -> None:
    source = "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}"
    with bounded(), pytest.raises(TemplateError):
        render(source, {}, autoescape=False)


def test_the_output_cap_applies_to_values_as_they_are_produced() -> None:
    source = "{% for a in s %}{{ s }}{% endfor %}"
    with bounded(megabytes=20), pytest.raises(TemplateError, match="output is longer than"):
        render(source, {"s": "x" * 50_000}, autoescape=False)
    assert MAX_WORK > 2 * templates_module.MAX_OUTPUT  # so that it is the cap that stops it


def test_compiled_templates_are_cached_within_a_size_budget() -> None:
    cache: Any = templates_module._COMPILED
    cache.clear()
    body = "x" * (MAX_TEMPLATE_LENGTH - 100)
    for number in range(50):
        assert render(f"{number}{body}", {}, autoescape=False).startswith(str(number))
    assert cache.chars <= cache.max_chars
    assert len(cache) < 50
    checked: Any = templates_module._CHECKED
    for number in range(50):
        assert check_template(f"{number}{body}") == []
    assert checked.chars <= checked.max_chars

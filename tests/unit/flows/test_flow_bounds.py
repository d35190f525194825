"""Hostile flow documents are refused quickly, with a problem naming where, never a RecursionError."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from storeflow.errors import FlowValidationError, Problem
from storeflow.flows import ActionStep, load_flow
from storeflow.flows.destinations import DestinationPolicy
from storeflow.flows.limits import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_NAME_LENGTH,
    MAX_NODES,
    MAX_STEPS,
    MAX_VARIANTS,
)

# Generous: each of these takes milliseconds; before the bounds they failed or took seconds.
DEADLINE_S = 2.0


@contextmanager
def quickly() -> Iterator[None]:
    started = time.perf_counter()
    yield
    assert time.perf_counter() - started < DEADLINE_S


def refused(text: str, source: str) -> list[Problem]:
    with quickly(), pytest.raises(FlowValidationError) as info:
        load_flow(text, source=source)
    assert info.value.problems
    return info.value.problems


def flow(steps: list[Any], **top: Any) -> dict[str, Any]:
    return {"id": "f", "name": "F", "trigger": {"event": "order_placed"}, "steps": steps, **top}


def nested_ifs(count: int) -> dict[str, Any]:
    step: dict[str, Any] = {"action": "tag", "tags": ["x"]}
    for _ in range(count):
        step = {"if": {"field": "profile.country", "eq": "BR"}, "then": [step]}
    return step


def test_yaml_nested_10000_deep_is_refused_with_its_path_and_line() -> None:
    text = "id: f\nname: F\nsteps: " + "[" * 10_000 + "]" * 10_000 + "\n"
    [problem] = refused(text, "deep.yaml")
    assert f"more than {MAX_DEPTH} levels" in problem.message
    assert problem.path.startswith("steps[0][0][0]")
    assert problem.line == 3
    assert problem.hint


def test_yaml_block_style_nesting_is_refused() -> None:
    text = "".join("  " * level + "a:\n" for level in range(800))
    [problem] = refused(text, "deep.yaml")
    assert f"more than {MAX_DEPTH} levels" in problem.message
    assert problem.path.startswith("a.a.a")


def test_json_nested_100000_deep_is_refused_with_its_path() -> None:
    text = '{"id": "f", "steps": ' + "[" * 100_000 + "]" * 100_000 + "}"
    [problem] = refused(text, "deep.json")
    assert f"more than {MAX_DEPTH} levels" in problem.message
    assert problem.path.startswith("steps[0][0]")
    assert problem.hint


def test_json_deep_without_extension_is_refused_when_the_format_is_guessed() -> None:
    [problem] = refused("[" * 100_000 + "]" * 100_000, "<flow>")
    assert f"more than {MAX_DEPTH} levels" in problem.message


@pytest.mark.parametrize("source", ["ifs.json", "ifs.yaml"])
def test_400_nested_if_steps_are_refused(source: str) -> None:
    text = json.dumps(flow([nested_ifs(400)]))  # JSON is YAML too
    [problem] = refused(text, source)
    assert f"more than {MAX_DEPTH} levels" in problem.message
    assert problem.path.startswith("steps[0].then[0].then[0]")


def test_a_few_nested_ifs_are_fine() -> None:
    defn = load_flow(json.dumps(flow([nested_ifs(10)])), source="ok.json")
    assert defn.id == "f"


@pytest.mark.parametrize("source", ["id.yaml", "id.json"])
def test_an_id_of_5000_digits_is_refused_without_echoing_it(source: str) -> None:
    text = '{"id": ' + "7" * 5000 + ', "name": "F", "trigger": {"event": "order_placed"}, "steps": [{"wait": "1d"}]}'
    problems = refused(text, source)
    [problem] = [p for p in problems if p.path == "id"]
    assert "5,000 characters" in problem.message
    assert all("7777777777" not in p.format() for p in problems)


def test_a_long_text_id_and_name_are_refused() -> None:
    text = json.dumps(flow([{"wait": "1d"}], id="a" * 5000, name="N" * (MAX_NAME_LENGTH + 1)))
    problems = refused(text, "long.json")
    assert {p.path for p in problems} == {"id", "name"}
    assert all("too long" in p.message for p in problems)
    assert all("aaaaaaaaaa" not in p.format() for p in problems)


def test_non_finite_numbers_are_refused() -> None:
    step = {"if": {"field": "order.total", "gt": 1e400}, "then": [{"wait": "1d"}]}
    text = json.dumps(flow([step])).replace("Infinity", "1e400")
    [problem] = refused(text, "inf.json")
    assert problem.path == "steps[0].if.gt"
    assert "finite" in problem.message


def test_too_many_steps_are_refused() -> None:
    text = json.dumps(flow([{"wait": "1d"}] * (MAX_STEPS + 1)))
    [problem] = refused(text, "many.json")
    assert problem.path == "steps"
    assert f"{MAX_STEPS + 1:,} steps" in problem.message


def test_nested_steps_count_towards_the_limit() -> None:
    branch = {
        "if": {"field": "profile.country", "eq": "BR"},
        "then": [{"wait": "1d"}] * 300,
        "else": [{"wait": "2d"}] * 300,
    }
    [problem] = refused(json.dumps(flow([branch])), "nested.json")
    assert problem.path == "steps"
    assert "601 steps" in problem.message


def test_a_split_with_too_many_variants_is_refused() -> None:
    variants = [{"name": f"v{i}", "weight": 1, "steps": [{"wait": "1d"}]} for i in range(MAX_VARIANTS + 1)]
    [problem] = refused(json.dumps(flow([{"split": variants}])), "split.json")
    assert problem.path == "steps[0].split"
    assert f"{MAX_VARIANTS + 1} variants" in problem.message


def test_a_document_over_the_size_limit_is_refused() -> None:
    text = json.dumps(flow([{"wait": "1d"}], description="x" * MAX_DOCUMENT_BYTES))
    [problem] = refused(text, "big.json")
    assert f"{MAX_DOCUMENT_BYTES:,} bytes" in problem.message


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_yaml_alias_bomb_is_refused_while_composing() -> None:
    assert len(BILLION_LAUGHS) < 400
    [problem] = refused(BILLION_LAUGHS, "laughs.yaml")
    assert f"{MAX_NODES:,} values" in problem.message
    assert "alias" in (problem.hint or "")
    assert problem.path == "f"
    assert problem.line == 6


def test_a_cyclic_yaml_alias_is_refused() -> None:
    [problem] = refused("id: f\nsteps: &s [*s]\n", "cycle.yaml")
    assert problem.path == "steps"
    assert "refers to the mapping or list it is inside" in problem.message


def test_aliases_that_nest_beyond_the_depth_limit_are_refused() -> None:
    # Each anchor is 40 deep and nests the previous one: fine one by one, 120 deep expanded.
    lines = [f"x{n}: &x{n} " + "[" * 40 + (f"*x{n - 1}" if n else "1") + "]" * 40 for n in range(3)]
    [problem] = refused("\n".join(lines) + "\n", "aliases.yaml")
    assert f"more than {MAX_DEPTH} levels" in problem.message
    assert problem.path.startswith("x1")


def test_ordinary_aliases_and_merge_keys_still_work() -> None:
    text = """\
id: f
name: F
trigger: {event: order_placed}
steps:
  - &buyer
    action: tag
    tags: [buyer]
  - *buyer
  - <<: *buyer
    tags: [vip]
"""
    defn = load_flow(text, source="alias.yaml")
    assert [step.params.model_dump()["tags"] for step in defn.steps if isinstance(step, ActionStep)] == [
        ("buyer",),
        ("buyer",),
        ("vip",),
    ]


# --- webhook destinations known to be refused are refused when validating --------------------------


def webhook_flow(url: str) -> str:
    return f"""\
id: hook
name: Hook
trigger: {{event: order_placed}}
steps:
  - wait: 1h
  - if: {{field: profile.country, eq: BR}}
    then:
      - action: webhook
        url: "{url}"
"""


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata endpoint"),
        ("http://169.254.10.1/hook", "a link-local address"),
        ("http://127.0.0.1:8080/hook", "a loopback address"),
        ("http://10.0.0.5/hook", "a private (RFC 1918) address"),
        ("https://[::1]/hook", "a loopback address"),
        ("https://[::ffff:192.168.1.1]/hook", "a private (RFC 1918) address"),
        ("http://localhost:9000/hook", "localhost is this machine"),
        ("https://user:secret@hooks.example.com/hook", "contains credentials"),
    ],
)
def test_webhooks_to_refused_destinations_fail_validation(url: str, why: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow(webhook_flow(url), source="hook.yaml")
    [problem] = info.value.problems
    assert problem.path == "steps[1].then[0].url"
    assert problem.line == 9
    assert why in problem.message
    assert "STOREFLOW_WEBHOOK_ALLOWED_HOSTS" in problem.message or "header" in problem.message


def test_webhook_host_names_are_left_to_the_send_time_check() -> None:
    # Not resolved at validation (DNS changes; CI may have no network): checked on every send.
    assert load_flow(webhook_flow("https://hooks.example.com/cart"), source="hook.yaml").id == "hook"
    assert load_flow(webhook_flow("https://8.8.8.8/cart"), source="hook.yaml").id == "hook"


def test_the_settings_can_allow_private_webhook_destinations() -> None:
    private = DestinationPolicy(allow_private=True)
    assert load_flow(webhook_flow("http://10.0.0.5/hook"), source="hook.yaml", destinations=private).id == "hook"
    with pytest.raises(FlowValidationError, match="cloud metadata endpoint"):  # never with allow_private alone
        load_flow(webhook_flow("http://169.254.169.254/"), source="hook.yaml", destinations=private)
    listed = DestinationPolicy(allowed_hosts=("169.254.169.254",))
    assert load_flow(webhook_flow("http://169.254.169.254/"), source="hook.yaml", destinations=listed).id == "hook"

"""Walking flows: step addressing, next_path climbing out of branches, variants."""

from collections import Counter

import pytest

from storeflow.flows import (
    FlowDefinition,
    IfStep,
    SplitStep,
    Variant,
    WaitForStep,
    branch_path,
    choose_variant,
    find_step,
    first_path,
    format_path,
    iter_steps,
    next_path,
    parse_flow,
    parse_path,
    step_at,
    step_key,
)

NESTED = {
    "id": "nested",
    "name": "Nested",
    "trigger": {"event": "order_placed"},
    "steps": [
        {"id": "s0", "action": "note", "text": "start"},
        {
            "id": "if1",
            "if": {"field": "profile.vip", "eq": True},
            "then": [
                {"id": "then0", "wait": "1h"},
                {
                    "id": "wf",
                    "wait_for": {"event": "order_placed", "timeout": "1d"},
                    "on_event": [{"id": "ev0", "wait": "1m"}],
                    "on_timeout": [
                        {"id": "to0", "wait": "1m"},
                        {
                            "id": "split",
                            "split": [
                                {
                                    "name": "a",
                                    "weight": 1,
                                    "steps": [{"id": "a0", "wait": "1s"}, {"id": "a1", "wait": "2s"}],
                                },
                                {"name": "b", "weight": 1},
                            ],
                        },
                    ],
                },
            ],
            "else": [{"id": "else0", "wait": "2h"}],
        },
        {"wait": "3h"},
    ],
}


@pytest.fixture
def defn() -> FlowDefinition:
    return parse_flow(NESTED)


def key_of(defn: FlowDefinition, path: tuple[str | int, ...] | None) -> str | None:
    return None if path is None else step_key(defn, path)


def test_format_and_parse_paths() -> None:
    path = ("steps", 1, "then", 1, "on_timeout", 1, "split", 0, "steps", 1)
    text = "steps[1].then[1].on_timeout[1].split[0].steps[1]"
    assert format_path(path) == text
    assert parse_path(text) == path
    assert parse_path("steps[0]") == ("steps", 0)
    for bad in ("steps[x]", ".steps", "steps[0]x", "steps..then"):
        with pytest.raises(ValueError, match="not a document path"):
            parse_path(bad)


def test_step_at_and_keys(defn: FlowDefinition) -> None:
    assert first_path(defn) == ("steps", 0)
    assert step_key(defn, ("steps", 0)) == "s0"
    assert step_key(defn, ("steps", 2)) == "steps[2]"  # no id: the path
    assert isinstance(step_at(defn, ("steps", 1)), IfStep)
    assert isinstance(step_at(defn, ("steps", 1, "then", 1)), WaitForStep)
    assert isinstance(step_at(defn, ("steps", 1, "then", 1, "on_timeout", 1)), SplitStep)
    assert step_key(defn, ("steps", 1, "then", 1, "on_timeout", 1, "split", 0, "steps", 1)) == "a1"


@pytest.mark.parametrize(
    "path",
    [
        (),
        ("steps",),
        ("steps", 3),
        ("steps", -1),
        ("stops", 0),
        ("steps", 0, "then", 0),  # an action has no branches
        ("steps", 1, "on_event", 0),  # an if has no on_event
        ("steps", 1, "then", 5),
        ("steps", 1, "then", 1, "on_timeout", 1, "split", 2, "steps", 0),
        ("steps", 1, "then", 1, "on_timeout", 1, "split", 0, "steps", 2),
        ("steps", 1, "then", 1, "on_timeout", 1, "split", 0, "stops", 0),
        ("steps", 1, "then"),
    ],
)
def test_bad_paths_raise_key_error(defn: FlowDefinition, path: tuple[str | int, ...]) -> None:
    with pytest.raises(KeyError):
        step_at(defn, path)


def test_next_path_climbs_out_of_nested_branches(defn: FlowDefinition) -> None:
    def after(key: str) -> str | None:
        path = find_step(defn, key)
        assert path is not None
        return key_of(defn, next_path(defn, path))

    assert after("s0") == "if1"
    assert after("if1") == "steps[2]"  # the if itself completing (engine uses branch_path to enter)
    assert after("then0") == "wf"
    assert after("ev0") == "steps[2]"  # last of on_event -> after wf -> wf is last of then -> after if1
    assert after("to0") == "split"
    assert after("a0") == "a1"
    assert after("a1") == "steps[2]"  # climbs split -> on_timeout -> wait_for -> then -> if
    assert after("else0") == "steps[2]"
    assert after("steps[2]") is None  # run complete


def test_branch_path(defn: FlowDefinition) -> None:
    if1 = find_step(defn, "if1")
    wf = find_step(defn, "wf")
    split = find_step(defn, "split")
    assert if1 is not None
    assert wf is not None
    assert split is not None
    assert key_of(defn, branch_path(defn, if1, "then")) == "then0"
    assert key_of(defn, branch_path(defn, if1, "else")) == "else0"
    assert key_of(defn, branch_path(defn, wf, "on_event")) == "ev0"
    assert key_of(defn, branch_path(defn, wf, "on_timeout")) == "to0"
    assert key_of(defn, branch_path(defn, split, 0)) == "a0"
    assert key_of(defn, branch_path(defn, split, "a")) == "a0"
    assert key_of(defn, branch_path(defn, split, 1)) == "steps[2]"  # empty variant -> next_path
    assert key_of(defn, branch_path(defn, split, "b")) == "steps[2]"
    for path, branch in (
        (if1, "on_event"),
        (wf, "then"),
        (split, 2),
        (split, "c"),
        (("steps", 0), "then"),
        (if1, 0),
    ):
        with pytest.raises(KeyError):
            branch_path(defn, path, branch)


def test_empty_branches_continue_after_the_step() -> None:
    defn = parse_flow(
        {
            "id": "e",
            "name": "E",
            "trigger": {"event": "order_placed"},
            "steps": [
                {"if": {"field": "profile.x", "exists": True}, "then": []},
                {"wait_for": {"event": "order_paid", "timeout": "1h"}},
            ],
        }
    )
    assert branch_path(defn, ("steps", 0), "then") == ("steps", 1)
    assert branch_path(defn, ("steps", 0), "else") == ("steps", 1)
    assert branch_path(defn, ("steps", 1), "on_timeout") is None


def test_iter_steps_in_document_order(defn: FlowDefinition) -> None:
    keys = [step_key(defn, path) for path, _ in iter_steps(defn)]
    assert keys == ["s0", "if1", "then0", "wf", "ev0", "to0", "split", "a0", "a1", "else0", "steps[2]"]
    for path, step in iter_steps(defn):
        assert step_at(defn, path) is step


def test_find_step(defn: FlowDefinition) -> None:
    assert find_step(defn, "a1") == ("steps", 1, "then", 1, "on_timeout", 1, "split", 0, "steps", 1)
    assert find_step(defn, "steps[2]") == ("steps", 2)
    assert find_step(defn, "nope") is None
    assert find_step(defn, "steps[9]") is None


def test_choose_variant_is_deterministic_and_weighted() -> None:
    variants = (Variant(name="a", weight=70), Variant(name="b", weight=20), Variant(name="c", weight=10))
    seed = "flow:profile-1:split"
    assert choose_variant(variants, seed) == choose_variant(variants, seed)
    counts = Counter(choose_variant(variants, f"flow:p{i}:split") for i in range(10_000))
    assert abs(counts[0] - 7000) < 300
    assert abs(counts[1] - 2000) < 250
    assert abs(counts[2] - 1000) < 200
    assert sorted(counts) == [0, 1, 2]
    with pytest.raises(ValueError, match="no variants"):
        choose_variant((), "x")

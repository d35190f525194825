"""storeflow flows: validate, apply, list, show, activate, pause, schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml
from cli_testing import BAD_FLOW, GOOD_FLOW, Invoke, assert_one_error_line, check

Write = Callable[[str, str], Path]


def test_validate_good_file_prints_ok(cli: Invoke, write: Write) -> None:
    write("flows/good.yaml", GOOD_FLOW)
    result = check(cli("flows", "validate", "flows/good.yaml"))
    assert result.stdout.strip() == "ok  flows/good.yaml  (tag-buyers, 2 steps)"
    assert result.stderr == ""


def test_validate_lists_every_problem_of_every_file_one_line_each(cli: Invoke, write: Write) -> None:
    write("flows/good.yaml", GOOD_FLOW)
    write("flows/bad.yaml", BAD_FLOW)
    write("flows/also-bad.json", '{"id": "x", "name": "X", "trigger": {"event": "order_placed"}, "steps": []')

    result = check(cli("flows", "validate", "flows/good.yaml", "flows/bad.yaml", "flows/also-bad.json",
                       "flows/missing.yaml"), 1)

    out = result.stdout.splitlines()
    assert "ok  flows/good.yaml  (tag-buyers, 2 steps)" in out
    bad = [ln for ln in out if ln.startswith("flows/bad.yaml:")]
    assert len(bad) == 3, out
    assert bad[0].startswith("flows/bad.yaml:4: trigger.event:") and '"order_placd"' in bad[0]
    assert 'did you mean "order_placed"' in bad[0]
    assert bad[1].startswith("flows/bad.yaml:6: steps[0].action:") and '"tagg"' in bad[1]
    assert bad[2].startswith("flows/bad.yaml:8: steps[1].wait:")
    assert any(ln.startswith("flows/also-bad.json:1: JSON syntax error") for ln in out), out
    assert "flows/missing.yaml: cannot read: No such file or directory" in out
    assert result.stderr.strip() == "error: 3 of 4 flow files are invalid (5 problems)"
    assert "Traceback" not in result.output


def test_validate_needs_no_database_or_config(run_cli: Invoke, write: Write, workdir: Path) -> None:
    write("good.yaml", GOOD_FLOW)
    check(run_cli("flows", "validate", "good.yaml"))
    assert not (workdir / "storeflow.db").exists()


def test_apply_applies_none_if_any_file_in_the_dir_is_invalid(cli: Invoke, write: Write) -> None:
    write("flows/a-good.yaml", GOOD_FLOW)
    write("flows/b-bad.yaml", BAD_FLOW)

    result = check(cli("flows", "apply", "flows"), 1)

    assert sum(ln.startswith("flows/b-bad.yaml:") for ln in result.stdout.splitlines()) == 3
    assert "nothing applied" in result.stderr
    assert json.loads(check(cli("flows", "list", "--json")).stdout) == []


def test_apply_creates_then_reports_unchanged_then_new_version(cli: Invoke, write: Write) -> None:
    write("flows/good.yaml", GOOD_FLOW)

    first = json.loads(check(cli("flows", "apply", "flows", "--json")).stdout)
    assert first == [{"file": "flows/good.yaml", "flow_id": "tag-buyers", "version": 1, "change": "created",
                      "status": "live"}]
    table = check(cli("flows", "apply", "flows")).stdout
    row = next(ln for ln in table.splitlines() if "tag-buyers" in ln)
    assert [c.strip() for c in row.split("│")] == ["tag-buyers", "1", "unchanged", "live", "flows/good.yaml"]

    write("flows/good.yaml", GOOD_FLOW.replace("tagged a buyer", "tagged a buyer again"))
    third = json.loads(check(cli("flows", "apply", "flows/good.yaml", "--status", "paused", "--json")).stdout)
    assert (third[0]["version"], third[0]["change"], third[0]["status"]) == (2, "new_version", "paused")


def test_apply_refuses_two_files_with_the_same_flow_id(cli: Invoke, write: Write) -> None:
    write("flows/one.yaml", GOOD_FLOW)
    write("flows/two.yaml", GOOD_FLOW)
    result = check(cli("flows", "apply", "flows"), 1)
    assert "flows/two.yaml: id: flow id 'tag-buyers' is also used by flows/one.yaml" in result.stdout
    assert json.loads(check(cli("flows", "list", "--json")).stdout) == []


def test_list_show_pause_activate(cli: Invoke, write: Write) -> None:
    write("good.yaml", GOOD_FLOW)
    check(cli("flows", "apply", "good.yaml", "--status", "draft"))

    listed = check(cli("flows", "list")).stdout
    row = next(ln for ln in listed.splitlines() if ln.startswith("tag-buyers"))
    assert "Tag buyers" in row and "draft" in row and "event: order_placed" in row

    assert check(cli("flows", "activate", "tag-buyers")).stdout.strip() == "tag-buyers is now live (version 1)"
    assert check(cli("flows", "pause", "tag-buyers")).stdout.strip() == "tag-buyers is now paused (version 1)"
    [flow] = json.loads(check(cli("flows", "list", "--json")).stdout)
    assert flow["status"] == "paused"

    shown = check(cli("flows", "show", "tag-buyers")).stdout
    assert "status paused, version 1, trigger event: order_placed" in shown
    definition = yaml.safe_load(shown.split("Definition (version 1):\n", 1)[1])
    assert definition["id"] == "tag-buyers"
    assert definition["steps"][0]["action"] == "tag"
    assert {k: v for k, v in definition["steps"][1].items() if k != "id"} == {"action": "note",
                                                                            "text": "tagged a buyer"}
    assert [step["id"].split("-")[0] for step in definition["steps"]] == ["tag", "note"]  # ids are generated

    table = check(cli("flows", "steps", "tag-buyers")).stdout
    assert definition["steps"][1]["id"] in table and "steps[1]" in table
    stats = json.loads(check(cli("flows", "steps", "tag-buyers", "--json")).stdout)
    assert [(s["id"], s["runs"]) for s in stats["steps"]] == [(step["id"], 0) for step in definition["steps"]]


def test_show_unknown_flow_is_one_error_line(cli: Invoke) -> None:
    line = assert_one_error_line(cli("flows", "show", "nope"))
    assert "flow 'nope' does not exist" in line


def test_schema_is_a_valid_json_schema_that_accepts_a_flow(run_cli: Invoke) -> None:
    schema = json.loads(check(run_cli("flows", "schema")).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(GOOD_FLOW), schema)
    assert not jsonschema.Draft202012Validator(schema).is_valid({"id": "x"})

"""storeflow segments templates list|show|install and storeflow segments stats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from cli_testing import Invoke, assert_one_error_line, check

from storeflow.segments.builtin import templates


def test_list_show_and_install_by_group_name_and_all(cli: Invoke) -> None:
    listed = json.loads(check(cli("segments", "templates", "list", "--json")).stdout)
    assert [r["name"] for r in listed] == [t.name for t in templates()]
    assert not any(r["installed"] for r in listed)
    assert "rfm-champions" in check(cli("segments", "templates", "list")).stdout

    shown = yaml.safe_load(check(cli("segments", "templates", "show", "rfm-lost")).stdout)
    assert shown["id"] == "rfm-lost" and shown["condition"] == {"rfm": {"recency": {"eq": 1}, "frequency": {"lte": 2}}}

    done = json.loads(check(cli("segments", "templates", "install", "lifecycle", "rfm-new", "--json")).stdout)
    assert {r["template"]: r["change"] for r in done} == {
        "rfm-new": "created", **{t.name: "created" for t in templates() if t.group == "lifecycle"}}
    again = check(cli("segments", "templates", "install", "all")).stdout
    assert "kept" in again and "--overwrite" in again
    installed = {s["id"] for s in json.loads(check(cli("segments", "list", "--json")).stdout)}
    assert installed == {t.name for t in templates()}
    overwritten = json.loads(check(cli("segments", "templates", "install", "rfm-new", "--overwrite", "--json")).stdout)
    assert overwritten == [{"template": "rfm-new", "segment_id": "rfm-new", "change": "unchanged", "version": 1}]


def test_an_edited_template_is_kept(cli: Invoke, write: Callable[[str, str], Path]) -> None:
    check(cli("segments", "templates", "install", "behaviour-one-time-buyers"))
    edited = check(cli("segments", "templates", "show", "behaviour-one-time-buyers")).stdout.replace(
        "eq: 1", "lte: 1")
    check(cli("segments", "apply", str(write("mine.yaml", edited))))
    check(cli("segments", "templates", "install", "behaviour"))
    shown = json.loads(check(cli("segments", "show", "behaviour-one-time-buyers", "--json")).stdout)
    assert shown["current_version"] == 2 and shown["definition"]["condition"]["lte"] == 1


def test_an_unknown_template_is_one_error_with_a_suggestion(cli: Invoke) -> None:
    line = assert_one_error_line(cli("segments", "templates", "install", "rfm-champion"))
    assert 'did you mean "rfm-champions"?' in line


def test_stats_before_and_after_a_refresh(cli: Invoke) -> None:
    assert "No segment statistics yet" in check(cli("segments", "stats")).stdout
    check(cli("events", "send", "--type", "order_placed", "--email", "a@example.com", "-p", "order_id=o1",
              "-p", "total=12"))
    refreshed = json.loads(check(cli("segments", "stats", "--refresh", "--json")).stdout)
    assert refreshed["customers"] == 1 and refreshed["frequency"] == [1, 1, 1, 1]
    shown = check(cli("segments", "stats")).stdout
    assert "over 1 customers" in shown and "RFM cut points" in shown

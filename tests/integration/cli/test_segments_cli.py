"""storeflow segments: validate, apply, list, show, members, preview, export, delete, schema."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
from cli_testing import Invoke, assert_one_error_line, check

from storeflow.store import open_store
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import profiles, segment_members, segment_membership_log

Write = Callable[[str, str], Path]

INDONESIA = """\
id: indonesia
name: Shoppers in Indonesia
condition: {field: profile.country, eq: ID}
"""
LOYAL_ID = """\
id: loyal-id
name: Loyal in Indonesia
condition:
  all:
    - in_segment: indonesia
    - {field: profile.orders_count, gte: 3}
"""
# Two problems on lines 3 and 5.
BROKEN = """\
id: broken
name: Broken
colour: red
condition:
  field: event.total
  gt: 1
"""


def test_validate_reports_every_problem_and_notes_outside_references(cli: Invoke, write: Write) -> None:
    write("segments/indonesia.yaml", INDONESIA)
    write("segments/loyal-id.yaml", LOYAL_ID)
    write("segments/broken.yaml", BROKEN)
    write("elsewhere.yaml", LOYAL_ID.replace("id: loyal-id", "id: other"))
    result = check(cli("segments", "validate", "segments", "elsewhere.yaml"), 1)
    out = result.stdout.splitlines()
    assert "ok  segments/indonesia.yaml  (indonesia)" in out
    assert "ok  segments/loyal-id.yaml  (loyal-id)" in out
    bad = [ln for ln in out if ln.startswith("segments/broken.yaml:")]
    assert len(bad) == 2, out
    assert bad[0].startswith('segments/broken.yaml:3: colour: unknown key "colour"')
    assert bad[1].startswith("segments/broken.yaml:5: condition.field:") and "profile." in bad[1]
    assert "ok  elsewhere.yaml  (other)" in out  # indonesia is among the files
    assert result.stderr.strip() == "error: 1 of 4 segment files is invalid (2 problems)"

    alone = check(cli("segments", "validate", "segments/loyal-id.yaml"))
    assert "refers to segment 'indonesia', not among these files" in alone.stderr


def test_validate_refuses_cycles_among_the_files(run_cli: Invoke, write: Write, workdir: Path) -> None:
    write("a.yaml", "id: a\nname: A\ncondition: {in_segment: b}\n")
    write("b.yaml", "id: b\nname: B\ncondition: {not: {in_segment: a}}\n")
    result = check(run_cli("segments", "validate", "a.yaml", "b.yaml"), 1)
    assert "a.yaml: condition.in_segment: the segment refers to itself: a -> b -> a" in result.stdout
    assert not (workdir / "storeflow.db").exists()  # no database needed


def test_apply_in_dependency_order_then_unchanged_then_new_version(cli: Invoke, write: Write) -> None:
    write("segments/a-loyal.yaml", LOYAL_ID)  # refers to indonesia, in a file sorted after it
    write("segments/b-indonesia.yaml", INDONESIA)
    first = json.loads(check(cli("segments", "apply", "segments", "--json")).stdout)
    assert [(r["segment_id"], r["version"], r["change"]) for r in first] == [
        ("loyal-id", 1, "created"), ("indonesia", 1, "created")]
    table = check(cli("segments", "apply", "segments")).stdout
    row = next(ln for ln in table.splitlines() if "indonesia" in ln and "loyal" not in ln)
    assert [c.strip() for c in row.split("│")] == ["indonesia", "1", "unchanged", "segments/b-indonesia.yaml"]
    write("segments/b-indonesia.yaml", INDONESIA.replace("eq: ID", "in: [ID, SG]"))
    third = json.loads(check(cli("segments", "apply", "segments/b-indonesia.yaml", "--json")).stdout)
    assert (third[0]["version"], third[0]["change"]) == (2, "new_version")

    listed = json.loads(check(cli("segments", "list", "--json")).stdout)
    assert [(s["id"], s["current_version"], s["computed_version"]) for s in listed] == [
        ("indonesia", 2, None), ("loyal-id", 1, None)]
    table = check(cli("segments", "list")).stdout
    assert "computing" in table and "Shoppers in Indonesia" in table


def test_apply_applies_none_if_a_reference_is_unknown(cli: Invoke, write: Write) -> None:
    write("segments/loyal.yaml", LOYAL_ID)
    result = check(cli("segments", "apply", "segments"), 1)
    assert 'segments/loyal.yaml: condition.all[0].in_segment: unknown segment "indonesia"' in result.stdout
    assert "nothing applied" in result.stderr
    assert json.loads(check(cli("segments", "list", "--json")).stdout) == []


def _members(db_url: str, country_by_email: dict[str, str]) -> list[str]:
    """Profiles (ids p-<email>) and, for those in ID, membership rows as the engine writes them."""
    store = open_store(db_url)
    try:
        with store.transaction() as tx:
            now = tx.get_segment("indonesia")["created_at"]  # type: ignore[index]
            for email, country in country_by_email.items():
                tx.create_profile(f"p-{email}", now, email=email, properties={"country": country})
            members = [f"p-{e}" for e, c in country_by_email.items() if c == "ID"]
            conn = sql_connection(tx)
            conn.execute(segment_members.insert(), [
                {"segment_id": "indonesia", "profile_id": p, "entered_at": now} for p in members])
            conn.execute(segment_membership_log.insert(), [
                {"segment_id": "indonesia", "profile_id": p, "entered_at": now, "entered_by": "compute"}
                for p in members])
            assert conn.execute(profiles.select()).all()
        return sorted(members)
    finally:
        store.close()


def test_show_members_export_and_delete(cli: Invoke, write: Write, db_url: str, workdir: Path) -> None:
    write("indonesia.yaml", INDONESIA)
    check(cli("segments", "apply", "indonesia.yaml"))
    members = _members(db_url, {"ana@example.com": "ID", "budi@example.com": "ID", "cai@example.com": "SG"})

    shown = check(cli("segments", "show", "indonesia")).stdout
    assert "indonesia: Shoppers in Indonesia" in shown and "field: profile.country" in shown
    page = json.loads(check(cli("segments", "members", "indonesia", "--limit", "1", "--json")).stdout)
    assert [m["profile_id"] for m in page["members"]] == members[:1] and page["next"] == members[0]
    table = check(cli("segments", "members", "indonesia", "--limit", "1")).stdout
    assert f"more: storeflow segments members indonesia --after {members[0]}" in table
    rest = json.loads(check(cli("segments", "members", "indonesia", "--after", members[0], "--json")).stdout)
    assert [m["profile_id"] for m in rest["members"]] == members[1:]
    past = json.loads(check(cli("segments", "members", "indonesia", "--at", "2000-01-01", "--json")).stdout)
    assert past["members"] == []

    out = check(cli("segments", "export", "indonesia", "--out", "members.csv")).stdout
    assert out.strip() == "2 members of indonesia written to members.csv"
    rows = list(csv.DictReader(io.StringIO((workdir / "members.csv").read_text(encoding="utf-8"))))
    assert [(r["profile_id"], r["email"]) for r in rows] == [(m, m.removeprefix("p-")) for m in members]
    stdout = check(cli("segments", "export", "indonesia")).stdout
    assert stdout.splitlines()[0] == "profile_id,email,phone,entered_at" and len(stdout.splitlines()) == 3

    deleted = check(cli("segments", "delete", "indonesia")).stdout
    assert deleted.strip() == "indonesia deleted (2 members removed)"
    line = assert_one_error_line(cli("segments", "show", "indonesia"))
    assert "segment 'indonesia' does not exist" in line


def test_preview_a_file_or_a_stored_segment(cli: Invoke, write: Write, db_url: str) -> None:
    write("indonesia.yaml", INDONESIA)
    check(cli("segments", "apply", "indonesia.yaml"))
    _members(db_url, {"ana@example.com": "ID", "cai@example.com": "SG"})
    stored = json.loads(check(cli("segments", "preview", "indonesia", "--json")).stdout)
    assert (stored["count"], [s["email"] for s in stored["sample"]]) == (1, ["ana@example.com"])
    write("singapore.yaml", INDONESIA.replace("indonesia", "singapore").replace("eq: ID", "eq: SG"))
    text = check(cli("segments", "preview", "singapore.yaml")).stdout
    assert text.splitlines()[0].startswith("singapore: 1 profile now")
    assert "cai@example.com" in text
    assert json.loads(check(cli("segments", "list", "--json")).stdout)[0]["id"] == "indonesia"  # nothing stored
    write("bad.yaml", BROKEN)
    assert "bad.yaml is invalid (2 problems)" in check(cli("segments", "preview", "bad.yaml"), 1).stderr
    assert "does not exist" in assert_one_error_line(cli("segments", "preview", "nope"))


def test_schema_is_a_json_schema(run_cli: Invoke) -> None:
    schema = json.loads(check(run_cli("segments", "schema")).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "storeflow segment"

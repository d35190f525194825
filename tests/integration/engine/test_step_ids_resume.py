"""Stable step ids on both backends: a flow edited by inserting a step keeps its runs and its
per-step statistics; runs resume by step id (and still by path for runs of older versions); the
layout is editor metadata that never makes a version."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from helpers import apply, profile_of

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.flows.step_ids import step_ids_of

V1 = """
id: welcome
name: Welcome
trigger: {event: customer_created}
steps:
  - action: tag
    tags: [entered]
  - wait: 1d
  - action: tag
    tags: [after-wait]
  - action: notify_team
    via: email
    subject: "New customer {{ profile.email }}"
    text: "{{ profile.email }} went through the welcome flow"
"""

# V1 with a step inserted before the wait (where the runs of V1 are waiting) and one at the top.
V2 = """
id: welcome
name: Welcome
trigger: {event: customer_created}
steps:
  - action: tag
    tags: [first]
  - action: tag
    tags: [entered]
  - action: tag
    tags: [inserted]
  - wait: 1d
  - action: tag
    tags: [after-wait]
  - action: notify_team
    via: email
    subject: "New customer {{ profile.email }}"
    text: "{{ profile.email }} went through the welcome flow"
"""


def _customer(n: int) -> dict[str, Any]:
    return {"type": "customer_created", "email": f"c{n}@example.com", "id": f"c{n}"}


def _stored_ids(sf: Storeflow, version: int) -> dict[str, str]:
    """path -> step id in the stored document of a version of "welcome"."""
    with sf.store.read() as tx:
        row = tx.get_flow_version("welcome", version)
    assert row is not None
    return {path: step_id for step_id, path in step_ids_of(row["definition"])}


def _stats(sf: Storeflow) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in sf.views.flow_steps("welcome")["steps"]}


def test_a_flow_edited_by_inserting_a_step_keeps_its_runs_and_per_step_statistics(
        make_sf: Any, clock: VirtualClock) -> None:
    sf: Storeflow = make_sf(team_emails=["team@example.com"])
    apply(sf, V1)
    v1 = _stored_ids(sf, 1)
    assert sorted(v1) == ["steps[0]", "steps[1]", "steps[2]", "steps[3]"]
    entered, wait, after, notify = (v1[f"steps[{i}]"] for i in range(4))
    old_runs = [sf.ingest([_customer(n)])[0].runs_started[0] for n in range(3)]
    sf.drain()
    for run_id in old_runs:
        run = sf.views.run(run_id)
        assert (run["status"], run["cursor"]) == ("waiting", wait)  # the cursor is the step id
    before = _stats(sf)
    assert (before[entered]["runs"], before[wait]["waiting"], before[after]["runs"]) == (3, 3, 0)

    clock.advance(timedelta(hours=1))
    result = apply(sf, V2)
    assert (result.version, result.change) == (2, "new_version")
    v2 = _stored_ids(sf, 2)
    # The steps V1 had keep their ids at their new places; the inserted ones get new ids.
    assert [v2[f"steps[{i}]"] for i in (1, 3, 4, 5)] == [entered, wait, after, notify]
    inserted_first, inserted = v2["steps[0]"], v2["steps[2]"]
    assert {inserted_first, inserted}.isdisjoint(v1.values())
    new_run = sf.ingest([_customer(9)])[0].runs_started[0]
    sf.drain()
    assert sf.views.run(new_run)["cursor"] == wait

    clock.advance(timedelta(days=1, hours=1))
    sf.drain()
    for n, run_id in enumerate(old_runs):
        run = sf.views.run(run_id)
        assert (run["status"], run["flow_version"]) == ("completed", 1)
        # They ran the rest of version 1, from the step they waited at: not the inserted steps.
        assert profile_of(sf, f"c{n}@example.com")["tags"] == ["entered", "after-wait"]
        assert [s["step_key"] for s in run["steps"]] == [entered, wait, wait, after, notify]
    assert sf.views.run(new_run)["status"] == "completed"
    assert profile_of(sf, "c9@example.com")["tags"] == ["first", "entered", "inserted", "after-wait"]

    stats = _stats(sf)
    assert [s["id"] for s in sf.views.flow_steps("welcome")["steps"]] == [
        inserted_first, entered, inserted, wait, after, notify]
    assert stats[entered]["runs"] == 4 and stats[entered]["log"] == {"done": 4}
    assert stats[wait]["runs"] == 4 and stats[wait]["log"] == {"waiting": 4, "resumed": 4}
    assert stats[wait]["waiting"] == 0
    assert stats[after]["runs"] == 4
    assert stats[notify]["runs"] == 4 and sum(stats[notify]["messages"].values()) == 4
    assert stats[inserted]["runs"] == 1 and stats[inserted_first]["runs"] == 1
    assert stats[wait]["path"] == "steps[3]"


def test_applying_the_same_document_again_is_unchanged_and_keeps_the_ids(sf: Storeflow) -> None:
    apply(sf, V1)
    ids = _stored_ids(sf, 1)
    assert apply(sf, V1).change == "unchanged"
    # The document `flows show` returns (ids included) is unchanged too.
    definition = sf.flows.get("welcome")["definition"]
    assert [s["id"] for s in definition["steps"]] == list(ids.values())
    assert sf.flows.apply(sf.flows.validate(json.dumps(definition), "shown.json")).change == "unchanged"


def test_a_run_of_an_older_version_with_a_path_cursor_resumes(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, V1)
    run_id = sf.ingest([_customer(1)])[0].runs_started[0]
    sf.drain()
    with sf.store.transaction() as tx:  # as stored before steps had ids: the cursor is the path
        tx.update_run(run_id, cursor="steps[1]")
    clock.advance(timedelta(days=2))
    sf.drain()
    assert sf.views.run(run_id)["status"] == "completed"
    assert profile_of(sf, "c1@example.com")["tags"] == ["entered", "after-wait"]


def test_a_layout_change_alone_updates_the_version_in_place(sf: Storeflow) -> None:
    apply(sf, V1)
    wait = _stored_ids(sf, 1)["steps[1]"]
    moved = V1 + f"layout:\n  nodes:\n    {wait}: {{x: 120, y: 40.5}}\n  zoom: 1.5\n"
    result = apply(sf, moved)
    assert (result.version, result.change) == (1, "layout")
    flow = sf.flows.get("welcome")
    assert flow["definition"]["layout"] == {"nodes": {wait: {"x": 120, "y": 40.5}}, "zoom": 1.5}
    assert len(flow["versions"]) == 1
    assert apply(sf, moved).change == "unchanged"
    assert apply(sf, V1).change == "unchanged"  # a document without a layout keeps the stored one
    assert sf.flows.get("welcome")["definition"]["layout"]["zoom"] == 1.5
    result = apply(sf, V2)  # a real change makes a version, which keeps the layout
    assert (result.version, result.change) == (2, "new_version")
    assert sf.flows.get("welcome")["definition"]["layout"]["nodes"] == {wait: {"x": 120, "y": 40.5}}

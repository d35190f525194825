"""The worker's batches, on both backends: runs of one batch see each other's changes, a run that
fails is undone without touching the others, and a batch whose writes the database refuses is
advanced again run by run, so only the offending run retries."""

from __future__ import annotations

from datetime import timedelta

from helpers import apply, profile_of, steps
from sqlalchemy import text

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock


def _runs(sf: Storeflow) -> dict[str, dict[str, object]]:
    return {str(r["flow_id"]): r for r in sf.views.runs()}


def test_runs_of_one_profile_in_one_batch_see_each_others_changes(sf: Storeflow) -> None:
    for name in ("a", "b", "c"):
        apply(sf, f"id: {name}\nname: {name}\ntrigger: {{event: customer_updated}}\nsteps:\n"
                  "  - action: set_property\n    property: visits\n    increment: 1\n"
                  f"  - if: {{field: profile.properties.visits, gte: 2}}\n"
                  f"    then: [{{action: tag, tags: [{name}-saw-another]}}]\n")
    sf.ingest([{"type": "customer_updated", "email": "s@example.com"}])
    assert sf.worker.run_batch().claimed == 3  # one batch, one transaction
    profile = profile_of(sf, "s@example.com")
    assert profile["properties"]["visits"] == 3
    assert len(profile["tags"]) == 2  # every run but the first saw an earlier run's increment


def test_a_run_failing_midway_leaves_no_trace_and_the_others_keep_theirs(sf: Storeflow) -> None:
    apply(sf, "id: bad\nname: Bad\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    tags: [bad-was-here]\n"
              "  - action: set_property\n    property: visits\n    increment: 1\n"
              "  - action: tag\n    target: order\n    tags: [x]\n")  # no order: fails here
    apply(sf, "id: good\nname: Good\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: set_property\n    property: visits\n    increment: 1\n"
              "  - action: tag\n    tags: [fine]\n")
    sf.ingest([{"type": "customer_updated", "email": "f@example.com"}])
    result = sf.worker.run_batch()
    assert (result.claimed, result.completed, result.failed) == (2, 1, 1)
    runs = _runs(sf)
    assert runs["bad"]["status"] == "failed" and "no order" in str(runs["bad"]["last_error"])
    assert runs["good"]["status"] == "completed"
    profile = profile_of(sf, "f@example.com")
    assert profile["tags"] == ["fine"]
    assert profile["properties"] == {"visits": 1}
    assert [s[2] for s in steps(sf, str(runs["bad"]["id"]))] == ["failed"]  # its done steps were undone too
    assert [s[1] for s in steps(sf, str(runs["good"]["id"]))] == ["action:set_property", "action:tag"]


def _refuse_notes_saying_explode(sf: Storeflow) -> None:
    """A real database trigger that refuses the step-log row of a note step saying "explode"."""
    with sf.store.transaction() as tx:
        if tx.conn.dialect.name == "sqlite":
            tx.conn.execute(text(
                "CREATE TRIGGER refuse_explode BEFORE INSERT ON run_steps "
                "WHEN NEW.kind = 'action:note' AND NEW.detail LIKE '%explode%' "
                "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"))
        else:
            tx.conn.execute(text(
                "CREATE FUNCTION refuse_explode() RETURNS trigger AS $$ BEGIN "
                "IF NEW.kind = 'action:note' AND NEW.detail::text LIKE '%explode%' "
                "THEN RAISE EXCEPTION 'refused by trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            tx.conn.execute(text("CREATE TRIGGER refuse_explode BEFORE INSERT ON run_steps "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse_explode()"))


def test_a_batch_the_database_refuses_is_advanced_run_by_run(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: bad\nname: Bad\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    tags: [bad-was-here]\n"
              "  - action: note\n    text: explode\n")
    apply(sf, "id: good\nname: Good\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    tags: [fine]\n")
    _refuse_notes_saying_explode(sf)
    sf.ingest([{"type": "customer_updated", "email": "r@example.com"}])
    result = sf.worker.run_batch()
    assert (result.claimed, result.completed, result.retried, result.failed) == (2, 1, 1, 0)
    runs = _runs(sf)
    assert runs["good"]["status"] == "completed"
    assert profile_of(sf, "r@example.com")["tags"] == ["fine"]
    bad = sf.views.run(str(runs["bad"]["id"]))
    assert bad["status"] == "active" and bad["attempts"] == 1 and bad["steps"] == []
    assert "refused by trigger" in bad["last_error"]
    assert bad["due_at"] == clock.now() + timedelta(seconds=5)  # backoff
    for attempt in (2, 3, 4):  # retried with growing backoff...
        clock.advance(timedelta(hours=1))
        assert sf.worker.run_batch().retried == 1
        assert sf.views.run(str(runs["bad"]["id"]))["attempts"] == attempt
    clock.advance(timedelta(hours=1))
    assert sf.worker.run_batch().failed == 1  # ...until step_max_attempts (5)
    bad = sf.views.run(str(runs["bad"]["id"]))
    assert bad["status"] == "failed" and "after 5 attempts" in bad["last_error"]
    assert [s[1:] for s in steps(sf, str(runs["bad"]["id"]))] == [("error", "failed")]
    assert profile_of(sf, "r@example.com")["tags"] == ["fine"]  # its tag never landed

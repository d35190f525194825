"""Segment-triggered flows on both backends: a run per entry into (or exit from) a segment, the
current members' runs of an include_existing flow (once, across a restart or a crash mid-backfill),
and in_segment in flow conditions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import apply

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.engine import scheduler as scheduler_module
from storeflow.errors import FlowValidationError
from storeflow.store.tables import segment_members

MakeSf = Callable[..., Storeflow]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def segment_flow(on: str = "entered", include_existing: bool = False, segment: str = "vip",
                 flow_id: str = "welcome") -> str:
    existing = "true" if include_existing else "false"
    return (f"id: {flow_id}\nname: Welcome\n"
            f"trigger: {{segment: {segment}, on: {on}, include_existing: {existing}}}\n"
            "steps:\n  - action: tag\n    tags: [welcomed]\n")


def change(email: str, kind: str = "segment_entered", segment: str = "vip", key: str | None = None) -> dict[str, Any]:
    """A membership change as the membership engine emits it."""
    item: dict[str, Any] = {"type": kind, "email": email,
                            "properties": {"segment_id": segment, "segment_name": segment.upper(),
                                           "segment_version": 1, "reason": "event"}}
    if key is not None:
        item["idempotency_key"] = key
    return item


def runs_by_email(sf: Storeflow, flow_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in sf.views.runs(flow_id=flow_id, limit=1000):
        email = sf.views.profile(run["profile_id"])["email"]
        counts[email] = counts.get(email, 0) + 1
    return counts


def add_members(sf: Storeflow, segment: str, emails: list[str], entered_at: datetime) -> None:
    """Members as the membership engine stores them (the profiles exist)."""
    pids = [sf.views.find_profile("email", e) for e in emails]
    with sf.store.transaction() as tx:
        tx.conn.execute(segment_members.insert(), [  # type: ignore[attr-defined]
            {"segment_id": segment, "profile_id": pid, "entered_at": entered_at} for pid in pids])


def make_segment(sf: Storeflow, segment_id: str) -> None:
    """A stored segment (the membership engine is not asked: members are written by the tests)."""
    now = sf.clock.now()
    doc = {"id": segment_id, "name": segment_id.upper(), "condition": {"field": "profile.tier", "eq": segment_id}}
    with sf.store.transaction() as tx:
        tx.insert_segment({"id": segment_id, "name": segment_id.upper(), "status": "live", "current_version": 1,
                           "computed_version": 1, "computed_at": now, "member_count": 0, "created_at": now,
                           "updated_at": now})
        tx.insert_segment_version(segment_id, 1, segment_id, doc, now)


@pytest.fixture(autouse=True)
def segments(sf: Storeflow) -> None:
    for segment_id in ("vip", "other"):
        make_segment(sf, segment_id)


def customers(sf: Storeflow, n: int) -> list[str]:
    emails = [f"c{i:02d}@example.com" for i in range(n)]
    sf.ingest([{"type": "customer_created", "email": e} for e in emails])
    return emails


# -- segment_entered / segment_exited events ---------------------------------------------------------
def test_a_run_per_entry_and_one_event_never_two_runs(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, segment_flow())
    first = sf.ingest([change("a@example.com", key="k1")])[0]
    assert len(first.runs_started) == 1
    assert sf.ingest([change("a@example.com", key="k1")])[0].status == "duplicate"  # the same event again
    sf.drain()
    clock.advance(timedelta(hours=1))
    sf.ingest([change("a@example.com", "segment_exited", key="k2")])
    assert sf.ingest([change("a@example.com", key="k3")])[0].runs_started  # entered again: a second run
    sf.drain()
    assert runs_by_email(sf, "welcome") == {"a@example.com": 2}
    assert {r["status"] for r in sf.views.runs(flow_id="welcome")} == {"completed"}


def test_only_this_segment_and_this_change_start_runs(sf: Storeflow) -> None:
    apply(sf, segment_flow(on="exited"))
    results = sf.ingest([change("a@example.com"), change("b@example.com", "segment_exited", segment="other"),
                         change("c@example.com", "segment_exited")])
    assert [bool(r.runs_started) for r in results] == [False, False, True]


# -- include_existing ----------------------------------------------------------------------------------
def test_existing_members_start_nothing_by_default(sf: Storeflow) -> None:
    emails = customers(sf, 3)
    add_members(sf, "vip", emails, T0)
    apply(sf, segment_flow())
    sf.drain()
    assert runs_by_email(sf, "welcome") == {}


def test_include_existing_starts_a_run_per_current_member_once(make_sf: MakeSf, clock: VirtualClock) -> None:
    sf = make_sf()
    emails = customers(sf, 7)
    add_members(sf, "vip", emails[:5], T0)
    add_members(sf, "other", emails[5:], T0)
    apply(sf, segment_flow(include_existing=True))
    sf.scheduler.backfill_page = 2
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(emails[:5], 1)
    # Applied again unchanged, a new version that keeps include_existing, paused and live again,
    # another process: the members' stays have their runs, nobody gets a second one.
    apply(sf, segment_flow(include_existing=True))
    apply(sf, segment_flow(include_existing=True).replace("welcomed", "welcomed-v2"))
    sf.flows.set_status("welcome", "paused")
    sf.flows.set_status("welcome", "live")
    other = make_sf()
    other.drain()
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(emails[:5], 1)


def test_a_member_who_entered_while_the_flow_ran_is_not_started_again(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, segment_flow(include_existing=True))
    sf.drain()
    clock.advance(timedelta(minutes=5))
    sf.ingest([change("late@example.com")])  # the engine stores the member and emits the event together
    add_members(sf, "vip", ["late@example.com"], clock.now())
    sf.flows.set_status("welcome", "paused")
    sf.flows.set_status("welcome", "live")  # live again: a backfill of the current members
    sf.drain()
    assert runs_by_email(sf, "welcome") == {"late@example.com": 1}


def test_a_version_that_turns_include_existing_on_backfills(sf: Storeflow) -> None:
    emails = customers(sf, 3)
    add_members(sf, "vip", emails, T0)
    apply(sf, segment_flow())
    sf.drain()
    assert runs_by_email(sf, "welcome") == {}
    apply(sf, segment_flow(include_existing=True))
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(emails, 1)


def test_include_existing_resumes_after_a_restart_mid_backfill(make_sf: MakeSf) -> None:
    sf = make_sf()
    emails = customers(sf, 9)
    add_members(sf, "vip", emails, T0)
    apply(sf, segment_flow(include_existing=True))
    sf.scheduler.backfill_page = 4
    sf.scheduler.tick()  # one page, then the process stops
    assert len(runs_by_email(sf, "welcome")) == 4
    sf.close()
    restarted = make_sf()
    restarted.scheduler.backfill_page = 4
    restarted.drain()
    assert runs_by_email(restarted, "welcome") == dict.fromkeys(emails, 1)


def test_a_crash_inside_a_page_repeats_the_page_whole(make_sf: MakeSf, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = make_sf()
    emails = customers(sf, 6)
    add_members(sf, "vip", emails, T0)
    apply(sf, segment_flow(include_existing=True))
    sf.scheduler.backfill_page = 4
    real = scheduler_module.start_run
    calls: list[str | None] = []

    def crash_on_the_third(*args: Any, **kwargs: Any) -> str | None:
        if len(calls) == 2:
            raise RuntimeError("power cut")
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(scheduler_module, "start_run", crash_on_the_third)
    with pytest.raises(RuntimeError, match="power cut"):
        sf.scheduler.tick()
    monkeypatch.setattr(scheduler_module, "start_run", real)
    assert runs_by_email(sf, "welcome") == {}  # the two started before the crash rolled back with it
    sf.close()
    restarted = make_sf()
    restarted.scheduler.backfill_page = 4
    restarted.drain()
    assert runs_by_email(restarted, "welcome") == dict.fromkeys(emails, 1)


# -- unknown segments ----------------------------------------------------------------------------------
def test_a_flow_naming_unknown_segments_is_refused_with_each_place(sf: Storeflow) -> None:
    text = ("id: w\nname: W\ntrigger: {segment: vipp}\n"
            "exit_when: {in_segment: churned}\n"
            "steps:\n  - if: {any: [{in_segment: other}, {not: {in_segment: nobody}}]}\n"
            "    then:\n      - action: tag\n        tags: [x]\n")
    with pytest.raises(FlowValidationError) as caught:
        apply(sf, text)
    assert [(p.path, p.message, p.hint) for p in caught.value.problems] == [
        ("trigger.segment", 'unknown segment "vipp"', 'did you mean "vip"?'),
        ("exit_when", 'unknown segment "churned"',
         "the segments are: other, vip; create it first (storeflow segments apply FILE)"),
        ("steps[0].if", 'unknown segment "nobody"',
         "the segments are: other, vip; create it first (storeflow segments apply FILE)"),
    ]
    assert sf.flows.list() == []  # nothing stored

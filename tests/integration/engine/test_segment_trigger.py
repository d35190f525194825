"""Segment-triggered flows on both backends, with the membership engine: a run per entry into (or
exit from) a segment, one event never two runs; the current members' runs of an include_existing
flow (once, across a restart or a crash mid-backfill); in_segment in flow conditions; flows naming
unknown segments refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from helpers import apply

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.engine import members_backfill
from storeflow.errors import FlowValidationError
from storeflow.segments import load_segment

MakeSf = Callable[..., Storeflow]


def segment_flow(on: str = "entered", include_existing: bool = False, segment: str = "vip",
                 flow_id: str = "welcome", tag: str = "welcomed") -> str:
    existing = "true" if include_existing else "false"
    return (f"id: {flow_id}\nname: Welcome\n"
            f"trigger: {{segment: {segment}, on: {on}, include_existing: {existing}}}\n"
            f"steps:\n  - action: tag\n    tags: [{tag}]\n")


def make_segment(sf: Storeflow, segment_id: str) -> None:
    """Segment ``vip`` holds the profiles whose property tier is "vip" (and so on)."""
    sf.segments.apply(load_segment({"id": segment_id, "name": segment_id.upper(),
                                    "condition": {"field": "profile.properties.tier", "eq": segment_id}}))


@pytest.fixture(autouse=True)
def segments(sf: Storeflow) -> None:
    for segment_id in ("vip", "other"):
        make_segment(sf, segment_id)
    sf.drain()  # computed in full (no profiles yet)


def set_tier(sf: Storeflow, tier: str, *emails: str) -> None:
    results = sf.ingest([{"type": "identified", "email": e, "profile": {"properties": {"tier": tier}},
                          "idempotency_key": uuid.uuid4().hex} for e in emails])
    assert {r.status for r in results} == {"accepted"}


def members(sf: Storeflow, segment_id: str) -> set[str]:
    with sf.store.read() as tx:
        rows = tx.segment_members_page(segment_id, None, 10_000)
    return {sf.views.profile(r["profile_id"])["email"] for r in rows}


def runs_by_email(sf: Storeflow, flow_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in sf.views.runs(flow_id=flow_id, limit=1000):
        email = sf.views.profile(run["profile_id"])["email"]
        counts[email] = counts.get(email, 0) + 1
    return counts


def emails(n: int) -> list[str]:
    return [f"c{i:02d}@example.com" for i in range(n)]


# -- segment_entered / segment_exited -----------------------------------------------------------------
def test_end_to_end_an_event_makes_the_profile_enter_and_the_flow_runs_once_per_entry(
        sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, segment_flow())
    apply(sf, segment_flow(on="exited", flow_id="goodbye", tag="left"))
    set_tier(sf, "vip", "a@example.com")
    set_tier(sf, "basic", "b@example.com")
    sf.drain()
    assert members(sf, "vip") == {"a@example.com"}
    assert runs_by_email(sf, "welcome") == {"a@example.com": 1}
    assert "welcomed" in sf.views.profile(sf.views.find_profile("email", "a@example.com") or "")["tags"]
    for tier in ("basic", "vip", "vip", "basic", "vip"):  # leaves, enters, stays, leaves, enters
        clock.advance(timedelta(hours=1))
        set_tier(sf, tier, "a@example.com")
        sf.drain()
    assert runs_by_email(sf, "welcome") == {"a@example.com": 3}
    assert runs_by_email(sf, "goodbye") == {"a@example.com": 2}
    assert {r["status"] for r in sf.views.runs(flow_id="welcome")} == {"completed"}


def test_one_event_never_starts_two_runs(sf: Storeflow) -> None:
    apply(sf, segment_flow())
    event = {"type": "segment_entered", "email": "a@example.com", "idempotency_key": "vip:a:1",
             "properties": {"segment_id": "vip", "segment_name": "VIP", "segment_version": 1, "reason": "event"}}
    assert len(sf.ingest([event])[0].runs_started) == 1
    assert sf.ingest([event])[0].status == "duplicate"
    other = {**event, "idempotency_key": "other:a:1", "properties": {**event["properties"], "segment_id": "other"}}
    assert sf.ingest([other])[0].runs_started == []  # another segment's entry
    sf.drain()
    assert runs_by_email(sf, "welcome") == {"a@example.com": 1}


# -- include_existing ----------------------------------------------------------------------------------
def test_existing_members_start_nothing_by_default(sf: Storeflow) -> None:
    set_tier(sf, "vip", *emails(3))
    sf.drain()
    apply(sf, segment_flow())
    sf.drain()
    assert members(sf, "vip") == set(emails(3))
    assert runs_by_email(sf, "welcome") == {}


def test_include_existing_starts_a_run_per_current_member_once(make_sf: MakeSf, sf: Storeflow) -> None:
    people = emails(7)
    set_tier(sf, "vip", *people[:5])
    set_tier(sf, "other", *people[5:])
    sf.drain()
    apply(sf, segment_flow(include_existing=True))
    sf.scheduler.backfill_page = 2
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(people[:5], 1)
    # Applied again unchanged, a new version keeping include_existing, paused and live again, a
    # second process: every member's stay has its run, nobody gets another one.
    apply(sf, segment_flow(include_existing=True))
    apply(sf, segment_flow(include_existing=True, tag="welcomed-v2"))
    sf.flows.set_status("welcome", "paused")
    sf.flows.set_status("welcome", "live")
    make_sf().drain()
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(people[:5], 1)


def test_members_who_entered_while_paused_start_when_live_again(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, segment_flow(include_existing=True))
    set_tier(sf, "vip", "early@example.com")
    sf.drain()
    assert runs_by_email(sf, "welcome") == {"early@example.com": 1}  # by its event
    sf.flows.set_status("welcome", "paused")
    clock.advance(timedelta(hours=1))
    set_tier(sf, "vip", "late@example.com")
    sf.drain()
    sf.flows.set_status("welcome", "live")  # live again: a run per current member without one
    sf.drain()
    assert runs_by_email(sf, "welcome") == {"early@example.com": 1, "late@example.com": 1}


def test_a_version_that_turns_include_existing_on_or_changes_the_segment_backfills(sf: Storeflow) -> None:
    people = emails(4)
    set_tier(sf, "vip", *people[:2])
    set_tier(sf, "other", *people[2:])
    sf.drain()
    apply(sf, segment_flow())
    sf.drain()
    assert runs_by_email(sf, "welcome") == {}
    apply(sf, segment_flow(include_existing=True))
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(people[:2], 1)
    apply(sf, segment_flow(include_existing=True, segment="other"))
    sf.drain()
    assert runs_by_email(sf, "welcome") == dict.fromkeys(people, 1)


def test_include_existing_resumes_after_a_restart_mid_backfill(make_sf: MakeSf, sf: Storeflow) -> None:
    people = emails(9)
    set_tier(sf, "vip", *people)
    sf.drain()
    apply(sf, segment_flow(include_existing=True))
    sf.scheduler.backfill_page = 4
    sf.scheduler.tick()  # one page, then the process stops
    assert len(runs_by_email(sf, "welcome")) == 4
    sf.close()
    restarted = make_sf()
    restarted.scheduler.backfill_page = 4
    restarted.drain()
    assert runs_by_email(restarted, "welcome") == dict.fromkeys(people, 1)


def test_a_crash_inside_a_page_repeats_the_page_whole(make_sf: MakeSf, sf: Storeflow,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    people = emails(6)
    set_tier(sf, "vip", *people)
    sf.drain()
    apply(sf, segment_flow(include_existing=True))
    sf.scheduler.backfill_page = 4
    real = members_backfill.start_run
    calls: list[str | None] = []

    def crash_on_the_third(*args: Any, **kwargs: Any) -> str | None:
        if len(calls) == 2:
            raise RuntimeError("power cut")
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(members_backfill, "start_run", crash_on_the_third)
    with pytest.raises(RuntimeError, match="power cut"):
        sf.scheduler.tick()
    monkeypatch.setattr(members_backfill, "start_run", real)
    assert runs_by_email(sf, "welcome") == {}  # the two started before the crash rolled back with it
    sf.close()
    restarted = make_sf()
    restarted.scheduler.backfill_page = 4
    restarted.drain()
    assert runs_by_email(restarted, "welcome") == dict.fromkeys(people, 1)


def test_a_new_segment_s_members_start_once_it_is_computed(sf: Storeflow, clock: VirtualClock) -> None:
    set_tier(sf, "gold", *emails(3))
    sf.drain()
    make_segment(sf, "gold")  # applied with the flow, before the engine computed it
    apply(sf, segment_flow(include_existing=True, segment="gold"))
    sf.run_until(clock.now() + timedelta(minutes=1))
    assert runs_by_email(sf, "welcome") == dict.fromkeys(emails(3), 1)


def test_members_a_full_computation_adds_start_only_include_existing_flows(sf: Storeflow,
                                                                           clock: VirtualClock) -> None:
    set_tier(sf, "vip", "v@example.com")
    set_tier(sf, "gold", "g@example.com")
    sf.drain()
    apply(sf, segment_flow(include_existing=True))
    apply(sf, segment_flow(flow_id="plain", tag="plain"))
    sf.drain()
    assert runs_by_email(sf, "welcome") == {"v@example.com": 1}
    clock.advance(timedelta(hours=1))
    # vip edited to take gold too: computed in full again, g enters without a segment_entered event
    sf.segments.apply(load_segment({"id": "vip", "name": "VIP", "condition": {
        "field": "profile.properties.tier", "in": ["vip", "gold"]}}))
    sf.run_until(clock.now() + timedelta(minutes=1))
    assert members(sf, "vip") == {"v@example.com", "g@example.com"}
    assert runs_by_email(sf, "welcome") == {"v@example.com": 1, "g@example.com": 1}
    assert runs_by_email(sf, "plain") == {}


# -- in_segment in flow conditions ---------------------------------------------------------------------
def test_in_segment_in_a_flow_condition(sf: Storeflow) -> None:
    apply(sf, "id: sort\nname: Sort\ntrigger: {event: order_placed}\nsteps:\n"
              "  - if: {in_segment: vip}\n    then:\n      - action: tag\n        tags: [vip-order]\n"
              "    else:\n      - action: tag\n        tags: [plain-order]\n")
    set_tier(sf, "vip", "v@example.com")
    set_tier(sf, "basic", "p@example.com")
    sf.drain()
    sf.ingest([{"type": "order_placed", "email": e, "properties": {"order_id": f"o-{e}", "total": 10}}
               for e in ("v@example.com", "p@example.com")])
    sf.drain()
    tags = {e: sf.views.profile(sf.views.find_profile("email", e) or "")["tags"]
            for e in ("v@example.com", "p@example.com")}
    assert "vip-order" in tags["v@example.com"] and "plain-order" not in tags["v@example.com"]
    assert "plain-order" in tags["p@example.com"] and "vip-order" not in tags["p@example.com"]


def test_in_segment_in_a_trigger_filter(sf: Storeflow) -> None:
    apply(sf, "id: vip-views\nname: VIP views\n"
              "trigger: {event: product_viewed, filter: {in_segment: vip}}\n"
              "steps:\n  - action: tag\n    tags: [seen]\n")
    set_tier(sf, "vip", "v@example.com")
    set_tier(sf, "basic", "p@example.com")
    sf.drain()
    results = sf.ingest([{"type": "product_viewed", "email": e, "properties": {"product_id": "p1"}}
                         for e in ("v@example.com", "p@example.com")])
    assert [bool(r.runs_started) for r in results] == [True, False]


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


def test_a_paused_flow_whose_segment_was_deleted_cannot_go_live(sf: Storeflow) -> None:
    apply(sf, segment_flow(segment="other"))
    sf.flows.set_status("welcome", "paused")
    sf.segments.delete("other")
    with pytest.raises(FlowValidationError, match='unknown segment "other"'):
        sf.flows.set_status("welcome", "live")
    assert sf.flows.get("welcome")["status"] == "paused"

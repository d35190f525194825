"""The membership engine on both backends: events make profiles enter and leave, with
segment_entered / segment_exited stored in the same engine tick; time-relative segments flip at the
exact instant on the virtual clock (across a DST change too); history answers "who was in it at t";
new and edited segments are computed in full without entry events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.segments import load_segment

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def apply(sf: Storeflow, segment_id: str, condition: dict[str, Any], name: str | None = None) -> None:
    sf.segments.apply(load_segment({"id": segment_id, "name": name or segment_id.title(), "condition": condition}))


def pid(sf: Storeflow, email: str) -> str:
    found = sf.views.find_profile("email", email)
    assert found is not None
    return str(found)


def members(sf: Storeflow, segment_id: str) -> set[str]:
    with sf.store.read() as tx:
        rows = tx.segment_members_page(segment_id, None, 10_000)
    return {sf.views.profile(r["profile_id"])["email"] for r in rows}


def segment_events(sf: Storeflow, email: str) -> list[tuple[str, str, str]]:
    """(type, segment_id, reason) of the profile's segment events, oldest first."""
    with sf.store.read() as tx:
        events = tx.timeline(pid(sf, email), limit=1000)
    found = [(e["occurred_at"], e["type"], e["properties"]["segment_id"], e["properties"]["reason"])
             for e in events if e["type"] in ("segment_entered", "segment_exited")]
    return [(t, s, r) for _, t, s, r in sorted(found)]


def identify(sf: Storeflow, email: str, **props: Any) -> None:
    assert sf.ingest([{"type": "identified", "email": email, "profile": {"properties": props}}])[0].status == "accepted"


def test_an_event_makes_one_profile_enter_and_another_leave(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "gold", {"field": "profile.properties.tier", "eq": "gold"})
    identify(sf, "a@example.com", tier="gold")
    identify(sf, "b@example.com", tier="silver")
    sf.membership.tick()  # computes gold in full (no profiles yet... or them: no events), then the queue
    assert members(sf, "gold") == {"a@example.com"}
    clock.advance(timedelta(minutes=5))
    sf.ingest([{"type": "identified", "email": "a@example.com", "profile": {"properties": {"tier": "silver"}}},
               {"type": "identified", "email": "b@example.com", "profile": {"properties": {"tier": "gold"}}}])
    assert sf.membership.tick() == 2  # one tick: both changes and their events
    assert members(sf, "gold") == {"b@example.com"}
    assert segment_events(sf, "b@example.com") == [("segment_entered", "gold", "event")]
    assert segment_events(sf, "a@example.com")[-1] == ("segment_exited", "gold", "event")
    with sf.store.read() as tx:
        (entered,) = [e for e in tx.timeline(pid(sf, "b@example.com")) if e["type"] == "segment_entered"]
    assert entered["properties"] == {"segment_id": "gold", "segment_name": "Gold", "segment_version": 1,
                                     "reason": "event"}
    assert entered["occurred_at"] == clock.now()


def test_an_event_no_segment_reads_queues_nothing(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "gold", {"field": "profile.properties.tier", "eq": "gold"})
    identify(sf, "a@example.com", tier="gold")
    sf.drain()
    clock.advance(timedelta(seconds=1))  # a profile created at the batch's instant counts as new
    sf.ingest([{"type": "product_viewed", "email": "a@example.com", "properties": {"product_id": "p1"}}])
    with sf.store.read() as tx:
        assert tx.has_segment_changes() is False  # last_active_at and product_viewed: nobody reads them
    sf.ingest([{"type": "identified", "email": "a@example.com", "profile": {"properties": {"tier": "x"}}}])
    with sf.store.read() as tx:
        assert tx.has_segment_changes() is True


def test_new_and_edited_segments_are_computed_without_entry_events(sf: Storeflow, clock: VirtualClock) -> None:
    for i in range(5):
        identify(sf, f"c{i}@example.com", n=i)
    sf.drain()
    apply(sf, "high", {"field": "profile.properties.n", "gte": 3})
    sf.drain()
    assert members(sf, "high") == {"c3@example.com", "c4@example.com"}
    assert segment_events(sf, "c3@example.com") == []  # existing members fire no entry
    clock.advance(timedelta(hours=1))
    apply(sf, "high", {"field": "profile.properties.n", "gte": 2})  # edited: version 2
    sf.drain()
    assert members(sf, "high") == {"c2@example.com", "c3@example.com", "c4@example.com"}
    assert segment_events(sf, "c2@example.com") == []
    with sf.store.read() as tx:
        stays = tx.membership_history(pid(sf, "c2@example.com"))
        (state,) = [s for s in tx.segment_states() if s["id"] == "high"]
    assert [(s["entered_by"], s["entered_at"]) for s in stays] == [("compute", clock.now())]
    assert state["computed_version"] == 2


def test_in_segment_dependants_follow(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "gold", {"field": "profile.properties.tier", "eq": "gold"})
    apply(sf, "gold_sub", {"all": [{"in_segment": "gold"}, {"field": "profile.consent.email", "eq": "subscribed"}]})
    sf.ingest([{"type": "identified", "email": "a@example.com",
                "profile": {"properties": {"tier": "gold"}, "consent": {"email": "subscribed"}}}])
    sf.drain()
    assert members(sf, "gold_sub") == {"a@example.com"}
    identify(sf, "a@example.com", tier="none")
    sf.membership.tick()
    assert members(sf, "gold") == members(sf, "gold_sub") == set()


def test_no_order_in_90_days_enters_at_the_exact_instant(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "lapsed", {"all": [{"orders": {}, "exists": True},
                                 {"not": {"orders": {"within": "90d"}, "exists": True}}]})
    sf.ingest([{"type": "order_placed", "email": "a@example.com",
                "properties": {"order_id": "o1", "total": 100, "currency": "USD"}}])
    last_order = clock.now()
    sf.drain()
    assert members(sf, "lapsed") == set()
    with sf.store.read() as tx:
        assert tx.next_segment_due_at() == last_order + timedelta(days=90) + US
    sf.run_until(last_order + timedelta(days=90))
    assert members(sf, "lapsed") == set()  # still within 90 days at the last microsecond
    sf.run_until(last_order + timedelta(days=91))
    assert members(sf, "lapsed") == {"a@example.com"}
    with sf.store.read() as tx:
        (stay,) = tx.membership_history(pid(sf, "a@example.com"))
    assert (stay["entered_at"], stay["entered_by"]) == (last_order + timedelta(days=90) + US, "time")
    assert segment_events(sf, "a@example.com") == [("segment_entered", "lapsed", "time")]
    clock.advance(timedelta(days=1))
    sf.ingest([{"type": "order_placed", "email": "a@example.com",
                "properties": {"order_id": "o2", "total": 10, "currency": "USD"}}])
    sf.membership.tick()
    assert members(sf, "lapsed") == set()
    assert segment_events(sf, "a@example.com")[-1] == ("segment_exited", "lapsed", "event")


@pytest.mark.parametrize("overrides", [{"timezone": "America/New_York"}])
def test_anniversary_flips_at_local_midnight_after_a_dst_change(make_sf: Any, clock: VirtualClock,
                                                                overrides: dict[str, Any]) -> None:
    sf: Storeflow = make_sf(**overrides)
    # 2026-03-08 02:00 EST the clocks go forward: 9 March starts at 04:00 UTC (EDT), not 05:00.
    # "Within 1 day" of a 9 March birthday is that local day.
    apply(sf, "birthday", {"field": "profile.properties.birthday", "anniversary_within": "1d"})
    identify(sf, "a@example.com", birthday="1990-03-09")
    sf.drain()
    assert members(sf, "birthday") == set()
    enters, exits = datetime(2026, 3, 9, 4, 0, tzinfo=UTC), datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    sf.run_until(enters - US)
    assert members(sf, "birthday") == set()
    sf.run_until(enters)
    assert members(sf, "birthday") == {"a@example.com"}
    sf.run_until(exits - US)
    assert members(sf, "birthday") == {"a@example.com"}
    sf.run_until(exits)
    assert members(sf, "birthday") == set()
    with sf.store.read() as tx:
        (stay,) = tx.membership_history(pid(sf, "a@example.com"))
        assert tx.segment_due_of(pid(sf, "a@example.com")) == {"birthday": datetime(2027, 3, 9, 5, 0, tzinfo=UTC)}
    assert (stay["entered_at"], stay["exited_at"], stay["exited_by"]) == (enters, exits, "time")


def test_history_answers_who_was_in_it_at_an_instant(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "vip", {"field": "profile.properties.vip", "eq": True})
    identify(sf, "a@example.com", vip=True)
    identify(sf, "b@example.com", vip=False)
    sf.drain()
    t1 = clock.now()
    clock.advance(timedelta(days=1))
    identify(sf, "a@example.com", vip=False)
    identify(sf, "b@example.com", vip=True)
    sf.drain()
    t2 = clock.now()
    with sf.store.read() as tx:
        at_t1 = {r["email"] for r in tx.segment_members_at("vip", t1, None, 100)}
        between = {r["email"] for r in tx.segment_members_at("vip", t2 - US, None, 100)}
        at_t2 = {r["email"] for r in tx.segment_members_at("vip", t2, None, 100)}
    assert at_t1 == between == {"a@example.com"}
    assert at_t2 == {"b@example.com"}


def test_a_merged_profile_leaves_its_segments(sf: Storeflow) -> None:
    apply(sf, "visitors", {"field": "profile.properties.seen", "eq": True})
    identify(sf, "x@example.com", seen=True)
    sf.ingest([{"type": "identified", "anonymous_id": "anon-1", "profile": {"properties": {"seen": True}}}])
    sf.drain()
    assert len(members_ids(sf, "visitors")) == 2
    sf.ingest([{"type": "identified", "anonymous_id": "anon-1", "email": "x@example.com"}])  # one person
    sf.drain()
    (survivor,) = members_ids(sf, "visitors")
    with sf.store.read() as tx:
        assert tx.profiles_by_id([survivor])[survivor]["merged_into"] is None


def members_ids(sf: Storeflow, segment_id: str) -> set[str]:
    with sf.store.read() as tx:
        return {r["profile_id"] for r in tx.segment_members_page(segment_id, None, 10_000)}


def test_the_engine_writes_the_lifecycle_stage(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "lifecycle-vip", {"field": "profile.properties.spend", "gte": 1000})
    apply(sf, "stage_vip", {"field": "profile.properties.lifecycle_stage", "eq": "vip"})
    identify(sf, "a@example.com", spend=5000)
    sf.drain()
    assert sf.views.profile(pid(sf, "a@example.com"))["properties"]["lifecycle_stage"] == "vip"
    assert members(sf, "stage_vip") == {"a@example.com"}  # a segment reading the property follows
    clock.advance(timedelta(minutes=1))
    identify(sf, "a@example.com", spend=10)
    sf.drain()
    assert sf.views.profile(pid(sf, "a@example.com"))["properties"]["lifecycle_stage"] is None
    assert members(sf, "stage_vip") == set()


def test_a_shorthand_property_path_follows_the_property(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "gold", {"field": "profile.tier", "eq": "gold"})  # profile.tier = profile.properties.tier
    identify(sf, "a@example.com", tier="silver")
    sf.drain()
    assert members(sf, "gold") == set()
    clock.advance(timedelta(minutes=1))
    identify(sf, "a@example.com", tier="gold")
    sf.drain()
    assert members(sf, "gold") == {"a@example.com"}
    clock.advance(timedelta(minutes=1))
    identify(sf, "a@example.com", tier="bronze")
    sf.drain()
    assert members(sf, "gold") == set()
    assert [e[0] for e in segment_events(sf, "a@example.com")] == ["segment_entered", "segment_exited"]


def test_a_flow_step_that_tags_or_sets_a_property_moves_the_profile_at_once(sf: Storeflow,
                                                                            clock: VirtualClock) -> None:
    apply(sf, "tagged-vip", {"field": "profile.tags", "contains": "vip"})
    apply(sf, "scored", {"field": "profile.score", "gte": 10})
    sf.flows.apply(sf.flows.validate("""\
id: promote
name: Promote
status: live
trigger: {event: order_placed}
steps:
  - action: tag
    tags: [vip]
  - action: set_property
    property: score
    value: 12
""", "promote.yaml"), status="live")  # fmt: skip
    identify(sf, "a@example.com")
    sf.drain()
    assert members(sf, "tagged-vip") == set() and members(sf, "scored") == set()
    clock.advance(timedelta(minutes=1))
    sf.ingest([{"type": "order_placed", "email": "a@example.com",
                "properties": {"order_id": "o1", "total": "10", "currency": "USD"}}])
    sf.drain()  # the worker's step changes the profile; no further event arrives
    assert members(sf, "tagged-vip") == {"a@example.com"}
    assert members(sf, "scored") == {"a@example.com"}

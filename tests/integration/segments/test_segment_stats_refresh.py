"""Segment statistics kept fresh on both backends: computed at start and then daily while a live
segment uses rfm or top (not at all otherwise), a refresh by another process counted, and a change
marking the rfm/top segments for a full computation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.segments import load_segment
from storeflow.segments.stats import load_stats

DAY = timedelta(days=1)


def order(email: str, key: str) -> dict[str, Any]:
    return {"type": "order_placed", "email": email, "properties": {"order_id": key, "total": 10, "currency": "USD"}}


def computed_at(sf: Storeflow) -> Any:
    with sf.store.read() as tx:
        stored = load_stats(tx)
    return None if stored is None else stored[1]


def test_daily_while_a_segment_needs_them(make_sf: Any, clock: VirtualClock) -> None:
    sf: Storeflow = make_sf(currency="USD")
    sf.ingest([order("a@example.com", "o1")])
    sf.segments.apply(load_segment({"id": "plain", "name": "Plain", "condition": {"field": "profile.orders_count",
                                                                                  "gte": 1}}))
    sf.drain()
    assert computed_at(sf) is None  # no segment reads them
    sf.segments.apply(load_segment({"id": "best", "name": "Best", "condition": {"rfm": {"recency": {"gte": 4}}}}))
    sf.drain()
    sf.drain()  # the segment set the refresher consults is the one the engine loaded
    first = computed_at(sf)
    assert first == clock.now()
    clock.advance(DAY / 2)
    sf.drain()
    assert computed_at(sf) == first  # less than a day old
    other = make_sf(currency="USD")  # another process refreshes them first
    clock.advance(DAY / 2)
    other.segment_stats.refresh()
    clock.advance(timedelta(hours=1))
    sf.drain()
    assert computed_at(sf) == first + DAY  # the other process's: not computed again
    clock.advance(DAY)
    sf.drain()
    assert computed_at(sf) == clock.now()


def test_a_change_marks_the_rfm_and_top_segments_for_a_full_computation(sf: Storeflow, clock: VirtualClock) -> None:
    for segment_id, condition in (("plain", {"field": "profile.orders_count", "gte": 1}),
                                  ("best", {"rfm": {"recency": {"gte": 4}}}),
                                  ("top", {"top": {"metric": "monetary", "percent": 10}})):
        sf.segments.apply(load_segment({"id": segment_id, "name": segment_id, "condition": condition}))
    sf.segment_stats.refresh()
    with sf.store.transaction() as tx:
        for segment_id in ("plain", "best", "top"):
            tx.update_segment(segment_id, computed_version=1, computed_at=clock.now())
    unchanged = sf.segment_stats.refresh()  # no customers yet, nothing moved
    assert (unchanged.changed, unchanged.recomputed) == (False, ())
    sf.ingest([order("a@example.com", "o1")])
    done = sf.segment_stats.refresh()
    assert (done.changed, done.recomputed) == (True, ("best", "top"))
    states = {s["id"]: s["computed_version"] for s in sf.segments.list()}
    assert states == {"plain": 1, "best": None, "top": None}

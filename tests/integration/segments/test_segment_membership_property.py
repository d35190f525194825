"""Property (both backends): after a random stream of events and clock advances, the membership
the engine kept incrementally (queued profiles, due flips, in_segment dependants) equals a full
recomputation of every segment at the current instant."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.segments import load_segment

SEGMENTS: dict[str, dict[str, Any]] = {
    "gold": {"field": "profile.properties.tier", "eq": "gold"},
    "buyers30": {"orders": {"within": "30d"}, "count": {"gte": 1}},
    "active7": {"field": "profile.last_active_at", "within": "7d"},
    "gold_active": {"all": [{"in_segment": "gold"}, {"in_segment": "active7"}]},
    "subscribed": {"field": "profile.consent.email", "eq": "subscribed"},
    "browsers": {"history": {"event": "product_viewed", "within": "3d"}, "count": {"gte": 2}},
    "lapsed": {"all": [{"orders": {}, "exists": True}, {"not": {"in_segment": "buyers30"}}]},
}
_RUN = itertools.count()

people = st.integers(min_value=0, max_value=4)
steps = st.lists(st.one_of(
    st.tuples(st.just("identify"), people, st.sampled_from(["gold", "silver", None])),
    st.tuples(st.just("order"), people, st.integers(min_value=1, max_value=500)),
    st.tuples(st.just("view"), people, st.just(0)),
    st.tuples(st.just("consent"), people, st.sampled_from(["subscribed", "unsubscribed"])),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=24 * 12), st.just(0)),
), min_size=1, max_size=10)


def _event(run: int, kind: str, who: int, arg: Any) -> dict[str, Any]:
    email = f"r{run}-p{who}@example.com"
    if kind == "identify":
        return {"type": "identified", "email": email, "profile": {"properties": {"tier": arg}}}
    if kind == "order":
        return {"type": "order_placed", "email": email,
                "properties": {"order_id": f"o-{run}-{next(_RUN)}", "total": arg, "currency": "USD"}}
    if kind == "view":
        return {"type": "product_viewed", "email": email, "properties": {"product_id": "sku-1"}}
    return {"type": "identified", "email": email, "profile": {"consent": {"email": arg}}}


def _assert_incremental_equals_full(sf: Storeflow) -> None:
    now = sf.clock.now()
    with sf.store.read() as tx:
        sf.segmentset.refresh(tx)
        for seg in sf.segmentset.ordered():
            kept = {r["profile_id"] for r in tx.segment_members_page(seg.id, None, 100_000)}
            full = tx.segment_member_ids(seg.condition, now=now, store_tz=sf.settings.tz, stats=None)
            assert kept == full, f"{seg.id} at {now}: kept-only {sorted(kept - full)}, full-only {sorted(full - kept)}"


def test_incremental_membership_equals_a_full_recomputation(sf: Storeflow, clock: VirtualClock) -> None:
    sf.segments.apply_all([load_segment({"id": sid, "name": sid, "condition": cond}) for sid, cond in SEGMENTS.items()])
    sf.drain()

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps)
    def run(stream: list[tuple[str, int, Any]]) -> None:
        run_id = next(_RUN)
        for kind, who, arg in stream:
            if kind == "advance":
                sf.run_until(clock.now() + timedelta(hours=who))
            else:
                item = {**_event(run_id, kind, who, arg), "id": f"e-{next(_RUN)}"}
                assert sf.ingest([item])[0].status == "accepted"
                clock.advance(timedelta(minutes=1))
                sf.drain()
            _assert_incremental_equals_full(sf)

    run()

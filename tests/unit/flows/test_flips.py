"""next_flip: the earliest instant a condition's truth changes by time alone, exactly; property tests
over random conditions and data: the truth is constant from now until the flip and differs at it, and
next_flip answers what the plain search (every candidate evaluated in order, kept here as the
reference) answers, on small and on long histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profile_data import MemoryProfileData
from segment_strategies import BASE, collections, conditions, profile_comparisons, profile_nodes

from storeflow.errors import ConditionError
from storeflow.flows.condition_parser import parse_condition
from storeflow.flows.conditions import AllOf, AnyOf, Condition, History, Not
from storeflow.flows.evaluate import EvalContext, evaluate
from storeflow.flows.flips import candidates, day_starts, next_flip
from storeflow.flows.segment_stats import SegmentStats

US = timedelta(microseconds=1)
DAY = timedelta(days=1)
HORIZON = timedelta(days=60)
STATS = SegmentStats(
    currency="IDR",
    recency=(timedelta(days=2), timedelta(days=5), timedelta(days=11), timedelta(days=23)),
    frequency=(1, 2, 3, 4),
    monetary=(Decimal(10), Decimal(20), Decimal(50), Decimal(100)),
    monetary_percentiles=tuple(Decimal(i) for i in range(1, 100)),
    frequency_percentiles=tuple(1 + i // 25 for i in range(1, 100)),
    customers=50,
)


def ctx_for(data: MemoryProfileData, profile: dict[str, Any], now: datetime = BASE, tz: str = "UTC") -> EvalContext:
    return EvalContext(record={"profile": profile}, now=now, profile_id="p1", data=data, stats=STATS, store_tz=tz)


def flip_of(
    doc: dict[str, Any],
    data: MemoryProfileData | None = None,
    profile: dict[str, Any] | None = None,
    tz: str = "UTC",
    now: datetime = BASE,
) -> datetime | None:
    ctx = ctx_for(data or MemoryProfileData(), profile or {}, now, tz)
    return next_flip(parse_condition(doc), ctx, horizon=HORIZON)


def test_no_order_in_90_days_flips_when_the_last_order_leaves_the_window() -> None:
    last = BASE - 30 * DAY
    data = MemoryProfileData(order_list=[{"id": "o", "placed_at": last, "total": Decimal(1)}])
    assert flip_of({"orders": {"within": "60d"}, "exists": False}, data) == last + 60 * DAY + US
    assert flip_of({"orders": {"within": "20d"}, "exists": False}, data) is None  # already true, stays


def test_a_future_item_flips_when_it_starts_to_count() -> None:
    data = MemoryProfileData(order_list=[{"id": "o", "placed_at": BASE + DAY, "total": Decimal(1)}])
    assert flip_of({"orders": {}, "exists": True}, data) == BASE + DAY


def test_first_order_between_30_and_60_days_ago() -> None:
    first = BASE - 10 * DAY
    profile = {"first_order_at": first}
    doc = {"all": [{"field": "profile.first_order_at", "older_than": "30d"},
                   {"not": {"field": "profile.first_order_at", "older_than": "60d"}}]}  # fmt: skip
    enters = flip_of(doc, profile=profile)
    assert enters == first + 30 * DAY + US
    assert flip_of(doc, profile=profile, now=enters) == first + 60 * DAY + US


def test_purchase_overdue_and_rfm_recency() -> None:
    last = BASE - DAY
    profile = {"orders_count": 1, "first_order_at": last, "last_order_at": last, "total_spent": {"IDR": 5}}
    assert flip_of({"purchase_overdue": {"factor": 2, "default": "7d"}}, profile=profile) == last + 7 * DAY + US
    assert flip_of({"rfm": {"recency": {"gte": 5}}}, profile=profile) == last + 2 * DAY + US
    assert flip_of({"rfm": {"frequency": {"gte": 1}}}, profile=profile) is None
    assert flip_of({"top": {"metric": "monetary", "percent": 10}}, profile=profile) is None


def test_birthday_within_7_days_in_the_store_time_zone() -> None:
    profile = {"properties": {"birthday": "1990-03-10"}}
    doc = {"field": "profile.birthday", "anniversary_within": "7d"}
    # BASE is 2026-03-01 00:00 UTC; in Jakarta (UTC+7) 07:00 on 1 March. The window reaches 10 March
    # on 4 March (4..10) and leaves it on 11 March, at midnight in Jakarta.
    enters = flip_of(doc, profile=profile, tz="Asia/Jakarta")
    assert enters == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert flip_of(doc, profile=profile, tz="Asia/Jakarta", now=enters) == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


def test_anniversary_flips_across_a_dst_change() -> None:
    # New York springs forward on 8 March 2026: midnight of 9 March is 04:00 UTC, of 8 March 05:00 UTC.
    profile = {"properties": {"birthday": "2000-03-08"}}
    doc = {"field": "profile.birthday", "anniversary_within": "1d"}
    enters = flip_of(doc, profile=profile, tz="America/New_York")
    assert enters == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert flip_of(doc, profile=profile, tz="America/New_York", now=enters) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)


def test_a_skipped_midnight_starts_the_day_at_the_clock_change() -> None:
    # Santiago (Chile) moved clocks from 00:00 to 01:00 on 7 September 2025: the day starts at 04:00 UTC.
    assert datetime(2025, 9, 7, 4, 0, tzinfo=UTC) in set(day_starts(datetime(2025, 9, 7).date(),
                                                                    ZoneInfo("America/Santiago")))  # fmt: skip


# --- property test -----------------------------------------------------------------------------

BORN = (datetime(1980, 1, 1).date(), datetime(2004, 12, 31).date())
offsets = st.integers(-30 * 24, 30 * 24).map(lambda h: BASE + timedelta(hours=h))
maybe_offsets = st.one_of(offsets, offsets.map(lambda t: t + US), offsets.map(lambda t: t - US))


@st.composite
def populations(draw: st.DrawFn) -> tuple[MemoryProfileData, dict[str, Any]]:
    orders = [{"id": f"o{i}", "placed_at": at, "total": Decimal(draw(st.integers(0, 40))), "currency": "IDR",
               "skus": draw(st.lists(st.sampled_from(["a", "b"]), max_size=2)), "categories": [],
               "discount_codes": []}
              for i, at in enumerate(draw(st.lists(maybe_offsets, max_size=4)))]  # fmt: skip
    carts = [{"id": f"c{i}", "last_activity_at": at, "value": Decimal(draw(st.integers(0, 40))),
              "converted": draw(st.booleans())}
             for i, at in enumerate(draw(st.lists(offsets, max_size=3)))]  # fmt: skip
    messages = [{"id": f"m{i}", "channel": draw(st.sampled_from(["email", "sms"])), "kind": "marketing",
                 "created_at": at, "opened_at": draw(st.none() | offsets), "clicked_at": None}
                for i, at in enumerate(draw(st.lists(offsets, max_size=3)))]  # fmt: skip
    events = [{"id": f"e{i}", "type": draw(st.sampled_from(["order_placed", "page_viewed"])), "occurred_at": at,
               "properties": {"total": draw(st.integers(0, 40)), "channel": "a"}}
              for i, at in enumerate(draw(st.lists(maybe_offsets, max_size=4)))]  # fmt: skip
    placed: list[dict[str, Any]] = orders
    past = sorted(o["placed_at"] for o in placed if o["placed_at"] <= BASE)
    profile = {
        "orders_count": len(past),
        "first_order_at": past[0] if past else None,
        "last_order_at": past[-1] if past else None,
        "total_spent": {"IDR": sum((o["total"] for o in placed), Decimal(0))},
        "properties": {"birthday": draw(st.dates(BORN[0], BORN[1])).isoformat()},
        "consent": {"sms": "subscribed"},
    }  # fmt: skip
    data = MemoryProfileData(event_list=events, order_list=orders, cart_list=carts, message_list=messages,
                             identities=frozenset({"email"}), segments=frozenset({"vip"}))  # fmt: skip
    return data, profile


SHIFTS = [timedelta(0), *(d * k for d in (timedelta(hours=1), DAY, 3 * DAY, 10 * DAY, 30 * DAY) for k in (1, 2, 3)),
          *(timedelta(days=d) for d in (2, 5, 11, 23, 7, 14, 60))]  # fmt: skip


def interesting_instants(data: MemoryProfileData, profile: dict[str, Any], tz: str) -> set[datetime]:
    """Just before, at and just after each item time shifted by the generated durations, and each
    store midnight: where a wrong flip would show."""
    times = [o["placed_at"] for o in data.order_list] + [c["last_activity_at"] for c in data.cart_list]
    times += [m["created_at"] for m in data.message_list] + [m["opened_at"] for m in data.message_list]
    times += [e["occurred_at"] for e in data.event_list] + [profile["last_order_at"], profile["first_order_at"]]
    found: set[datetime] = set()
    for t in (t for t in times if t is not None):
        for shift in SHIFTS:
            found.update((t + shift - US, t + shift, t + shift + US))
    zone = ZoneInfo(tz)
    day = BASE.astimezone(zone).date()
    for i in range(62):
        for start in day_starts(day + timedelta(days=i), zone):
            found.update((start - US, start))
    return found


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, populations(), st.sampled_from(["UTC", "Asia/Jakarta", "America/New_York"]), st.data())
def test_truth_is_constant_until_the_flip_and_differs_at_it(
    condition: Condition, population: tuple[MemoryProfileData, dict[str, Any]], tz: str, draw: st.DataObject
) -> None:
    data, profile = population
    ctx = ctx_for(data, profile, tz=tz)
    flip = next_flip(condition, ctx, horizon=HORIZON)
    now_truth = evaluate(condition, ctx)
    end = flip if flip is not None else BASE + HORIZON + US
    assert flip is None or BASE < flip <= BASE + HORIZON
    samples = {BASE, end - US}
    span = int((end - BASE) / US)
    samples.update(BASE + US * draw.draw(st.integers(0, span - 1)) for _ in range(6))
    samples.update(t for t in interesting_instants(data, profile, tz) if BASE <= t < end)
    for at in sorted(samples):
        assert evaluate(condition, replace(ctx, now=at)) == now_truth, (at, flip)
    if flip is not None:
        assert evaluate(condition, replace(ctx, now=flip)) != now_truth


# --- against the reference ---------------------------------------------------------------------


def reference_next_flip(condition: Condition, ctx: EvalContext, *, horizon: timedelta) -> datetime | None:
    """The plain search next_flip was first written as: every candidate, in order, the whole
    condition evaluated at each."""
    end = ctx.now + horizon
    current = evaluate(condition, ctx)
    for candidate in sorted({c for c in candidates(condition, ctx, end) if ctx.now < c <= end}):
        if evaluate(condition, replace(ctx, now=candidate)) != current:
            return candidate
    return None


def outcome(search: Any, condition: Condition, ctx: EvalContext, horizon: timedelta) -> Any:
    try:
        return search(condition, ctx, horizon=horizon)
    except ConditionError as error:
        return type(error)


@st.composite
def long_histories(draw: st.DrawFn) -> tuple[MemoryProfileData, dict[str, Any]]:
    """A population with many items (up to 40 of each collection), bunched along a walk through
    time around now, so windows fill and empty often within the horizon."""
    data, profile = draw(populations())
    gaps = st.integers(0, 72).map(lambda h: timedelta(hours=h, microseconds=h % 3 - 1))

    def walk(count: int) -> list[datetime]:
        at, found = draw(offsets), []
        for _ in range(count):
            at += draw(gaps) - timedelta(hours=30)
            found.append(at)
        return found

    amounts = st.none() | st.integers(0, 400).map(lambda n: Decimal(n) / 2)  # none: no value to aggregate
    for i, at in enumerate(walk(draw(st.integers(0, 40)))):
        data.event_list.append({"id": f"x{i}", "type": draw(st.sampled_from(["order_placed", "page_viewed"])),
                                "occurred_at": at, "properties": {"total": draw(amounts)}})  # fmt: skip
    for i, at in enumerate(walk(draw(st.integers(0, 40)))):
        data.order_list.append({"id": f"xo{i}", "placed_at": at, "total": draw(amounts), "currency": "IDR",
                                "skus": [], "categories": [], "discount_codes": []})  # fmt: skip
    for i, at in enumerate(walk(draw(st.integers(0, 20)))):
        data.cart_list.append({"id": f"xc{i}", "last_activity_at": at, "value": draw(amounts), "converted": False})
    for i, at in enumerate(walk(draw(st.integers(0, 20)))):
        data.message_list.append({"id": f"xm{i}", "channel": "email", "kind": "marketing", "created_at": at,
                                  "opened_at": None, "clicked_at": None})  # fmt: skip
    return data, profile


timed_conditions = st.recursive(
    st.one_of(collections(), collections(), profile_comparisons, profile_nodes),
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda cs: AllOf(conditions=tuple(cs))),
        st.lists(kids, min_size=1, max_size=3).map(lambda cs: AnyOf(conditions=tuple(cs))),
        kids.map(lambda c: Not(condition=c)),
    ),
    max_leaves=5,
)
"""Trees of collections and time-relative profile conditions: more of them flip within the horizon."""


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(conditions, timed_conditions, timed_conditions),
    st.one_of(populations(), long_histories()),
    st.sampled_from(["UTC", "Asia/Jakarta", "America/New_York"]),
    st.sampled_from([timedelta(hours=12), DAY * 10, HORIZON, DAY * 400]),
    st.integers(-3 * 24, 3 * 24).map(lambda h: BASE + timedelta(hours=h)),
    st.sampled_from([True, True, True, False]),
)
def test_next_flip_is_the_reference_search(
    condition: Condition,
    population: tuple[MemoryProfileData, dict[str, Any]],
    tz: str,
    horizon: timedelta,
    now: datetime,
    with_data: bool,
) -> None:
    data, profile = population
    ctx = ctx_for(data, profile, now=now, tz=tz)
    if not with_data:  # a context without profile data: errors, or not, as the reference has them
        ctx = replace(ctx, data=None, profile_id=None)
    assert outcome(next_flip, condition, ctx, horizon) == outcome(reference_next_flip, condition, ctx, horizon)


def test_a_long_history_flips_as_the_reference_does() -> None:
    events = [{"id": f"e{i}", "type": "page_viewed", "occurred_at": BASE - timedelta(minutes=97 * i), "properties": {}}
              for i in range(500)]  # fmt: skip
    data = MemoryProfileData(event_list=events)
    views = "page_viewed"
    doc = {"all": [{"history": {"event": views, "within": "7d"}, "count": {"gte": 3}},
                   {"any": [{"history": {"event": views, "within": "30d"}, "exists": True},
                            {"not": {"history": {"event": views}, "last_seen": {"within": "7d"}}}]}]}  # fmt: skip
    ctx = ctx_for(data, {})
    for horizon in (DAY, HORIZON, 400 * DAY):
        found = next_flip(parse_condition(doc), ctx, horizon=horizon)
        assert found == reference_next_flip(parse_condition(doc), ctx, horizon=horizon)
    assert found == BASE - timedelta(minutes=97 * 2) + 7 * DAY + US  # the third latest view leaves the week


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(collections(), long_histories(), st.integers(-3 * 24, 3 * 24).map(lambda h: BASE + timedelta(hours=h)))
def test_a_collection_over_many_items_flips_as_the_reference_does(
    node: History, population: tuple[MemoryProfileData, dict[str, Any]], now: datetime
) -> None:
    data, profile = population
    ctx = ctx_for(data, profile, now=now)
    for condition in (node, Not(condition=node)):
        assert next_flip(condition, ctx, horizon=HORIZON) == reference_next_flip(condition, ctx, horizon=HORIZON)

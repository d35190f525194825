"""MembershipPort on both backends: members and their history, the change queue, due flips."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.contract.helpers import T0

from storeflow.flows.conditions import Comparison
from storeflow.flows.paths import parse_field_path
from storeflow.store import Store

HOUR = timedelta(hours=1)


def _row(segment_id: str, profile_id: str, at: Any = T0, by: str = "event") -> dict[str, Any]:
    return {"segment_id": segment_id, "profile_id": profile_id, "at": at, "by": by}


def _segment(tx: Any, sid: str, *, version: int = 1, computed: int | None = None, status: str = "live") -> None:
    tx.insert_segment({"id": sid, "name": sid.upper(), "status": status, "current_version": version,
                       "computed_version": computed, "computed_at": None, "member_count": 0,
                       "created_at": T0, "updated_at": T0})


def test_enter_and_exit_write_members_and_history(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.enter_segment([_row("vip", "p1"), _row("vip", "p2", by="compute"), _row("new", "p1")]) == [
            ("new", "p1"), ("vip", "p1"), ("vip", "p2")]
        assert tx.enter_segment([_row("vip", "p1", at=T0 + HOUR)]) == []  # already in: nothing changes
        assert tx.segments_of("p1") == frozenset({"vip", "new"})
        assert tx.memberships_of(["p1", "p2", "p3"]) == {"p1": frozenset({"vip", "new"}), "p2": frozenset({"vip"})}
        assert tx.is_member("vip", "p2") and not tx.is_member("new", "p2")
        assert tx.member_counts(["vip", "new", "none"]) == {"vip": 2, "new": 1, "none": 0}
        assert tx.members_in_range("vip", "p1", "p9") == {"p2"}
    with store.transaction() as tx:
        assert tx.exit_segment([_row("vip", "p1", at=T0 + HOUR, by="time"), _row("vip", "p3")]) == [("vip", "p1")]
        assert tx.exit_segment([_row("vip", "p1", at=T0 + 2 * HOUR)]) == []
        assert tx.enter_segment([_row("vip", "p1", at=T0 + 3 * HOUR)]) == [("vip", "p1")]
        stays = [(s["segment_id"], s["entered_at"], s["exited_at"], s["entered_by"], s["exited_by"])
                 for s in tx.membership_history("p1")]
        assert stays == [("new", T0, None, "event", None), ("vip", T0, T0 + HOUR, "event", "time"),
                         ("vip", T0 + 3 * HOUR, None, "event", None)]


def test_merged_members(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_profile("keep", T0)
        tx.create_profile("lose", T0)
        tx.enter_segment([_row("vip", "lose"), _row("vip", "keep")])
        tx.merge_profiles("keep", "lose", T0)
        assert tx.merged_members(["keep"]) == [("vip", "lose")]
        assert tx.merged_members(["lose"]) == []


def test_change_queue(store: Store) -> None:
    lease = T0 + 10 * HOUR
    with store.transaction() as tx:
        assert tx.has_segment_changes() is False
        tx.queue_segment_changes({"p2": {"event:order_placed"}, "p1": {"profile:properties"}}, T0)
        tx.queue_segment_changes({"p1": {"orders", "profile:properties"}, "p3": {"*"}}, T0)  # the union
        tx.queue_segment_changes({"p3": {"orders"}, "p4": set()}, T0 + HOUR)  # anything stays anything
        assert tx.has_segment_changes() is True
        assert tx.has_segment_changes(T0 - HOUR) is False
        assert tx.claim_segment_changes(2, T0, lease) == {"p1": frozenset({"orders", "profile:properties"}),
                                                         "p2": frozenset({"event:order_placed"})}
        assert tx.claim_segment_changes(10, T0 + HOUR, lease) == {"p3": frozenset({"*"}), "p4": frozenset({"*"})}
        assert tx.claim_segment_changes(10, T0 + 2 * HOUR, lease) == {}  # leased
        assert tx.has_segment_changes(T0 + 2 * HOUR) is False
        tx.queue_segment_changes({"p2": {"orders"}}, T0 + 2 * HOUR)  # queued again while claimed
        tx.finish_segment_changes(["p1", "p2", "p3"], lease)
        assert tx.claim_segment_changes(10, T0 + 2 * HOUR, T0 + 20 * HOUR) == {
            "p2": frozenset({"event:order_placed", "orders"})}  # evaluated again, with both changes
        assert tx.claim_segment_changes(10, lease, lease + HOUR) == {"p4": frozenset({"*"})}  # lease ran out
        tx.finish_segment_changes(["p2"], T0 + 20 * HOUR)
        tx.finish_segment_changes(["p4"], lease + HOUR)
        assert tx.has_segment_changes() is False
    with store.transaction() as tx:
        tx.queue_segment_changes({"p5": {f"event:type-{i:04d}" for i in range(300)}}, T0)  # too many: anything
        assert tx.claim_segment_changes(10, T0, lease) == {"p5": frozenset({"*"})}
        tx.lock_profiles_for_membership(["p5", "p1"])


def test_due_rows_claimed_earliest_first(store: Store) -> None:
    lease = T0 + 10 * HOUR
    with store.transaction() as tx:
        assert tx.next_segment_due_at() is None
        tx.set_segment_due([{"segment_id": "lapsed", "profile_id": "p1", "due_at": T0 + 2 * HOUR},
                            {"segment_id": "lapsed", "profile_id": "p2", "due_at": T0 + HOUR},
                            {"segment_id": "bday", "profile_id": "p1", "due_at": T0 + 5 * HOUR}])
        tx.set_segment_due([{"segment_id": "lapsed", "profile_id": "p1", "due_at": T0 + 3 * HOUR}])  # replaced
        assert tx.segment_due_of("p1") == {"lapsed": T0 + 3 * HOUR, "bday": T0 + 5 * HOUR}
        assert tx.next_segment_due_at() == T0 + HOUR
        assert tx.claim_due_segment_flips(T0, 10, lease) == []
        due = tx.claim_due_segment_flips(T0 + 3 * HOUR, 10, lease)
        assert [(r["segment_id"], r["profile_id"], r["due_at"]) for r in due] == [
            ("lapsed", "p2", T0 + HOUR), ("lapsed", "p1", T0 + 3 * HOUR)]
        assert tx.next_segment_due_at() == T0 + 5 * HOUR  # the claimed rows are leased
        tx.set_segment_due([{"segment_id": "lapsed", "profile_id": "p1", "due_at": T0 + 90 * HOUR}])  # next flip
        tx.finish_segment_due([("lapsed", "p1"), ("lapsed", "p2")], lease)  # p2 got none: dropped
        assert tx.segment_due_of("p2") == {}
        assert tx.segment_due_of("p1") == {"lapsed": T0 + 90 * HOUR, "bday": T0 + 5 * HOUR}
        tx.delete_segment_due([("bday", "p1"), ("lapsed", "p1")])
        assert tx.next_segment_due_at() is None


def test_segment_states_and_full_computation(store: Store) -> None:
    with store.transaction() as tx:
        _segment(tx, "a", version=2, computed=1)
        _segment(tx, "gone", status="deleted")
        for pid in ("p1", "p2", "p3"):
            tx.create_profile(pid, T0, properties={"tier": "gold" if pid != "p2" else "silver"})
        assert [(s["id"], s["computed_version"]) for s in tx.segment_states()] == [("a", 1), ("gone", None)]
        assert [s["id"] for s in tx.segment_states(lock=True) if s["status"] == "live"] == ["a"]
        assert tx.lock_segment_for_compute("gone") is None
        locked = tx.lock_segment_for_compute("a")
        assert locked is not None and locked["current_version"] == 2
        assert tx.profile_id_page("", 2) == ["p1", "p2"]
        assert tx.profile_id_page("p2", 2) == ["p3"]
        gold = Comparison(path=parse_field_path("profile.properties.tier"), op="eq", value="gold")
        utc = ZoneInfo("UTC")
        assert tx.segment_member_ids(gold, now=T0, store_tz=utc, stats=None) == {"p1", "p3"}
        assert tx.segment_member_ids(gold, now=T0, store_tz=utc, stats=None, profile_ids=["p2", "p3"]) == {"p3"}
        assert tx.segment_member_ids(gold, now=T0, store_tz=utc, stats=None, after="p1", upto="p3") == {"p3"}
        tx.enter_segment([_row("a", "p1", by="compute")])
        tx.mark_segment_computed("a", 2, T0 + HOUR)
        (state,) = [s for s in tx.segment_states() if s["id"] == "a"]
        assert state["computed_version"] == 2
        assert tx.get_segment("a")["member_count"] == 1  # type: ignore[index]

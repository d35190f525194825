"""SegmentsPort on both backends: segment rows, versions by digest, the segments revision, member
pages now and at a past instant, deletion (members removed, stays closed) and what uses a segment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.contract.helpers import T0, flow_row

from storeflow.store import Store
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaigns, segment_due, segment_members, segment_membership_log

HOUR = timedelta(hours=1)


def segment_row(sid: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": sid, "name": sid.upper(), "status": "live", "current_version": 1,
                           "computed_version": None, "computed_at": None, "member_count": 0,
                           "created_at": T0, "updated_at": T0}
    row.update(values)
    return row


def doc(sid: str, field: str = "profile.country") -> dict[str, Any]:
    return {"id": sid, "name": sid.upper(), "condition": {"field": field, "eq": "ID"}}


def test_segments_versions_and_revision(store: Store) -> None:
    with store.read() as tx:
        before = tx.segments_revision()
    with store.transaction() as tx:
        tx.insert_segment(segment_row("vip"))
        tx.insert_segment(segment_row("b-list"))
        assert tx.insert_segment_version("vip", 1, "d1", doc("vip"), T0) is True
        assert tx.insert_segment_version("vip", 2, "d1", doc("vip"), T0 + HOUR) is False  # same document
        assert tx.insert_segment_version("vip", 2, "d2", doc("vip", "profile.city"), T0 + HOUR) is True
        tx.insert_segment_version("b-list", 1, "b1", doc("b-list"), T0)
        tx.update_segment("vip", current_version=2, name="VIPs", computed_version=1, computed_at=T0,
                          member_count=3)
    with store.read() as tx:
        assert tx.segments_revision() == before + 3  # every insert and update moves it on
        vip = tx.get_segment("vip")
        assert vip is not None
        assert (vip["name"], vip["current_version"], vip["computed_version"], vip["computed_at"],
                vip["member_count"]) == ("VIPs", 2, 1, T0, 3)
        assert tx.get_segment("nope") is None
        assert [s["id"] for s in tx.list_segments()] == ["b-list", "vip"]
        assert [(v["version"], v["digest"], v["created_at"]) for v in tx.segment_versions_of("vip")] == [
            (1, "d1", T0), (2, "d2", T0 + HOUR)]
        v2 = tx.get_segment_version("vip", 2)
        assert v2 is not None and v2["definition"]["condition"]["field"] == "profile.city"
        assert tx.get_segment_version("vip", 3) is None
        assert tx.live_segment_definitions() == {"vip": doc("vip", "profile.city"), "b-list": doc("b-list")}
    with store.transaction() as tx:
        tx.bump_segments_revision()
        assert tx.segments_revision() == before + 4


def _profiles_and_members(store: Store) -> None:
    with store.transaction() as tx:
        for pid in ("p1", "p2", "p3", "p4"):
            tx.create_profile(pid, T0, email=f"{pid}@example.com", phone="+6281234" if pid == "p2" else None)
        tx.merge_profiles("p1", "p4", T0)  # p4 is merged: never listed as a current member
        tx.insert_segment(segment_row("vip", member_count=4))
        tx.insert_segment(segment_row("other"))
        conn = sql_connection(tx)  # members are written by the membership engine
        conn.execute(segment_members.insert(), [
            {"segment_id": "vip", "profile_id": pid, "entered_at": T0 + i * HOUR}
            for i, pid in enumerate(("p3", "p1", "p2", "p4"))])
        conn.execute(segment_members.insert(), [{"segment_id": "other", "profile_id": "p1", "entered_at": T0}])
        log = [  # p1 was in, left at +2h, came back at +5h; p2 since +1h; p3 in from +3h
            ("p1", T0, T0 + 2 * HOUR), ("p1", T0 + 5 * HOUR, None), ("p2", T0 + HOUR, None),
            ("p3", T0 + 3 * HOUR, None), ("p9", T0, T0 + HOUR)]
        conn.execute(segment_membership_log.insert(), [
            {"segment_id": "vip", "profile_id": pid, "entered_at": entered, "exited_at": exited,
             "entered_by": "compute", "exited_by": "event" if exited else None} for pid, entered, exited in log])
        conn.execute(segment_membership_log.insert(), [
            {"segment_id": "other", "profile_id": "p1", "entered_at": T0, "exited_at": None,
             "entered_by": "compute", "exited_by": None}])
        conn.execute(segment_due.insert(), [{"segment_id": "vip", "profile_id": "p1", "due_at": T0},
                                            {"segment_id": "other", "profile_id": "p1", "due_at": T0}])


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["profile_id"] for r in rows]


def test_member_pages_now_and_at_an_instant(store: Store) -> None:
    _profiles_and_members(store)
    with store.read() as tx:
        page = tx.segment_members_page("vip", None, 2)
        assert page == [{"profile_id": "p1", "email": "p1@example.com", "phone": None, "entered_at": T0 + HOUR},
                        {"profile_id": "p2", "email": "p2@example.com", "phone": "+6281234",
                         "entered_at": T0 + 2 * HOUR}]
        assert _ids(tx.segment_members_page("vip", "p2", 2)) == ["p3"]
        assert tx.segment_members_page("vip", "p3", 2) == []
        assert tx.segment_members_page("nobody", None, 2) == []

        def at(t: datetime, after: str | None = None, limit: int = 10) -> list[tuple[str, datetime]]:
            return [(r["profile_id"], r["entered_at"]) for r in tx.segment_members_at("vip", t, after, limit)]

        assert at(T0) == [("p1", T0), ("p9", T0)]
        assert at(T0 + HOUR) == [("p1", T0), ("p2", T0 + HOUR)]  # p9 left exactly then
        assert at(T0 + 2 * HOUR) == [("p2", T0 + HOUR)]  # p1 left exactly then
        assert at(T0 + 6 * HOUR) == [("p1", T0 + 5 * HOUR), ("p2", T0 + HOUR), ("p3", T0 + 3 * HOUR)]
        assert at(T0 + 6 * HOUR, after="p1", limit=1) == [("p2", T0 + HOUR)]
        assert at(T0 - HOUR) == []
        rows = tx.segment_members_at("vip", T0, None, 10)
        assert rows[0]["email"] == "p1@example.com" and rows[1]["email"] is None  # p9: no profile row


def test_delete_removes_members_closes_stays_and_drops_due_rows(store: Store) -> None:
    _profiles_and_members(store)
    with store.read() as tx:
        before = tx.segments_revision()
    with store.transaction() as tx:
        assert tx.delete_segment("vip", T0 + 10 * HOUR) == 4
    with store.read() as tx:
        vip = tx.get_segment("vip")
        assert vip is not None and (vip["status"], vip["member_count"], vip["computed_version"]) == ("deleted", 0, None)
        assert tx.segments_revision() == before + 1
        assert [s["id"] for s in tx.list_segments()] == ["other"]
        assert [s["id"] for s in tx.list_segments(include_deleted=True)] == ["other", "vip"]
        assert tx.segment_members_page("vip", None, 10) == []
        assert _ids(tx.segment_members_page("other", None, 10)) == ["p1"]  # other segments keep theirs
        assert _ids(tx.segment_members_at("vip", T0 + 6 * HOUR, None, 10)) == ["p1", "p2", "p3"]  # history stays
        assert tx.segment_members_at("vip", T0 + 10 * HOUR, None, 10) == []
        conn = sql_connection(tx)
        closed = conn.execute(segment_membership_log.select().where(
            segment_membership_log.c.segment_id == "vip", segment_membership_log.c.exited_by == "deleted")).all()
        assert sorted(r.profile_id for r in closed) == ["p1", "p2", "p3"]
        assert all(r.exited_at == T0 + 10 * HOUR for r in closed)
        assert [r.segment_id for r in conn.execute(segment_due.select())] == ["other"]
        assert "vip" not in tx.live_segment_definitions()


def test_segment_users_are_live_flows_and_campaigns_to_send(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("live-one"))
        tx.insert_flow_version("live-one", 1, "a", {"id": "live-one", "v": 1}, T0)
        tx.insert_flow_version("live-one", 2, "b", {"id": "live-one", "v": 2}, T0)
        tx.update_flow("live-one", current_version=2)
        tx.insert_flow(flow_row("paused-one", status="paused"))
        tx.insert_flow_version("paused-one", 1, "c", {"id": "paused-one"}, T0)
        conn = sql_connection(tx)
        conn.execute(campaigns.insert(), [
            {"id": f"c-{status}", "name": status, "status": status, "definition": {"audience": {"include": ["vip"]}},
             "created_at": T0, "updated_at": T0} for status in ("draft", "scheduled", "sending", "sent")])
    with store.read() as tx:
        users = tx.segment_users()
    assert [(u["kind"], u["id"]) for u in users] == [
        ("flow", "live-one"), ("campaign", "c-scheduled"), ("campaign", "c-sending")]
    assert users[0]["definition"] == {"id": "live-one", "v": 2} and users[0]["name"] == "LIVE-ONE"
    assert users[1]["definition"] == {"audience": {"include": ["vip"]}}


def test_preview_counts_and_samples_by_the_sql_evaluator_without_writing(store: Store) -> None:
    from zoneinfo import ZoneInfo

    from storeflow.flows.condition_parser import parse_condition

    with store.transaction() as tx:
        for pid in ("p1", "p2", "p3", "p4"):
            tx.create_profile(pid, T0, email=f"{pid}@example.com")
        tx.merge_profiles("p1", "p4", T0)  # merged: never counted
        for pid, orders in (("p1", 3), ("p2", 0), ("p3", 1), ("p4", 5)):
            tx.update_profile(pid, T0, orders_count=orders)
    with store.read() as tx:
        revision = tx.segments_revision()
        found = tx.preview_segment(parse_condition({"field": "profile.orders_count", "gte": 1}), now=T0,
                                   store_tz=ZoneInfo("UTC"), stats=None, sample=1)
        assert found == {"count": 2, "sample": [{"profile_id": "p1", "email": "p1@example.com"}]}
        none = tx.preview_segment(parse_condition({"field": "profile.orders_count", "gte": 100}), now=T0,
                                  store_tz=ZoneInfo("UTC"), stats=None, sample=5)
        assert none == {"count": 0, "sample": []}
        assert tx.segments_revision() == revision

"""Segments over HTTP: create or update (versions), validate, problems with path and hint, references
and cycles, list and show, members paged now and at an instant, preview (never writes), CSV export,
delete (refused while in use), the JSON Schema, and bounded inputs."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from api_harness import Api

from storeflow.segments.definition import MAX_SEGMENT_BYTES
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaigns, segment_members, segment_membership_log, segments

INDONESIA = """\
id: indonesia
name: Shoppers in Indonesia
condition:
  field: profile.country
  eq: ID
"""


def put(api: Api, document: str, media: str = "application/yaml", method: str = "put") -> Any:
    return api.client.request(method.upper(), "/v1/segments", content=document,
                              headers={**api.auth, "Content-Type": media})


def people(api: Api, *countries: str) -> list[str]:
    """One identified profile per country (emails p0@example.com, ...); their ids."""
    ids = []
    for i, country in enumerate(countries):
        resp = api.client.post("/v1/profiles/identify", headers=api.auth, json={
            "email": f"p{i}@example.com", "profile": {"properties": {"country": country}}})
        assert resp.status_code == 200, resp.text
        ids.append(resp.json()["profile_id"])
    return ids


def add_members(api: Api, segment_id: str, profile_ids: list[str], *, exited: dict[str, int] | None = None) -> None:
    """Members and their stays written as the membership engine would: entered one hour apart."""
    now = api.sf.clock.now()
    exited = exited or {}
    with api.sf.store.transaction() as tx:
        conn = sql_connection(tx)
        current = [p for p in profile_ids if p not in exited]
        if current:
            conn.execute(segment_members.insert(), [
                {"segment_id": segment_id, "profile_id": p, "entered_at": now + timedelta(hours=i)}
                for i, p in enumerate(profile_ids) if p in current])
        conn.execute(segment_membership_log.insert(), [
            {"segment_id": segment_id, "profile_id": p, "entered_at": now + timedelta(hours=i),
             "exited_at": now + timedelta(hours=exited[p]) if p in exited else None, "entered_by": "compute",
             "exited_by": "event" if p in exited else None} for i, p in enumerate(profile_ids)])
        conn.execute(segments.update().where(segments.c.id == segment_id).values(member_count=len(current)))


def test_create_unchanged_new_version_show_and_list(api: Api) -> None:
    created = put(api, INDONESIA)
    assert created.status_code == 201, created.text
    assert created.json() == {"segment_id": "indonesia", "version": 1, "change": "created"}
    same = put(api, INDONESIA, method="post")
    assert (same.status_code, same.json()["change"], same.json()["version"]) == (200, "unchanged", 1)
    as_json = {"id": "indonesia", "name": "Shoppers in Indonesia",
               "condition": {"field": "profile.country", "eq": "ID"}}
    assert put(api, json.dumps(as_json), "application/json").json()["change"] == "unchanged"  # same document

    edited = put(api, INDONESIA.replace("eq: ID", "in: [ID, SG]"))
    assert edited.status_code == 200
    assert edited.json() == {"segment_id": "indonesia", "version": 2, "change": "new_version"}

    shown = api.client.get("/v1/segments/indonesia", headers=api.auth).json()
    assert (shown["current_version"], shown["status"], shown["member_count"]) == (2, "live", 0)
    assert shown["computed_version"] is None  # a new version is computed again in full
    assert shown["definition"]["condition"] == {"field": "profile.country", "in": ["ID", "SG"]}
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    versions = api.client.get("/v1/segments/indonesia/versions", headers=api.auth).json()["versions"]
    assert versions[0]["definition"]["condition"]["eq"] == "ID"

    listed = api.client.get("/v1/segments", headers=api.auth).json()["segments"]
    assert [(s["id"], s["current_version"], s["member_count"]) for s in listed] == [("indonesia", 2, 0)]


def test_invalid_documents_list_every_problem_with_path_hint_and_line(api: Api) -> None:
    resp = put(api, "id: broken\nname: Broken\ncondition:\n  all:\n    - {field: event.total, gte: 10}\n"
                    "    - {orders: {within: soon}, count: {gte: 1}}\n")
    assert resp.status_code == 422
    body = resp.json()
    assert body["detail"].startswith("the segment is not valid")
    problems = {p["path"]: p for p in body["problems"]}
    assert set(problems) == {"condition.all[0].field", "condition.all[1].orders.within"}
    assert problems["condition.all[0].field"]["line"] == 5
    assert "profile." in problems["condition.all[0].field"]["hint"]
    assert api.client.get("/v1/segments/broken", headers=api.auth).status_code == 404


def test_unknown_references_and_cycles_are_refused_naming_the_chain(api: Api) -> None:
    unknown = put(api, "id: a\nname: A\ncondition: {in_segment: b}\n")
    assert unknown.status_code == 422
    (problem,) = unknown.json()["problems"]
    assert (problem["path"], problem["message"]) == ("condition.in_segment", 'unknown segment "b"')
    assert put(api, "id: b\nname: B\ncondition: {field: profile.country, eq: ID}\n").status_code == 201
    assert put(api, "id: a\nname: A\ncondition: {in_segment: b}\n").status_code == 201
    cycle = put(api, "id: b\nname: B\ncondition: {not: {in_segment: a}}\n")
    assert cycle.status_code == 422
    assert cycle.json()["problems"][0]["message"] == "the segment refers to itself: b -> a -> b"
    itself = put(api, "id: c\nname: C\ncondition: {any: [{in_segment: c}]}\n")
    assert itself.json()["problems"][0]["message"] == "the segment refers to itself: c -> c"
    assert api.client.get("/v1/segments/b", headers=api.auth).json()["current_version"] == 1


def test_validate_checks_references_and_stores_nothing(api: Api) -> None:
    ok = api.client.post("/v1/segments/validate", content=INDONESIA,
                         headers={**api.auth, "Content-Type": "text/yaml"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["valid"] is True and ok.json()["segment_id"] == "indonesia" and ok.json()["references"] == []
    bad = api.client.post("/v1/segments/validate", content="id: x\nname: X\ncondition: {in_segment: nope}\n",
                          headers={**api.auth, "Content-Type": "text/yaml"})
    assert bad.status_code == 422
    assert api.client.get("/v1/segments", headers=api.auth).json()["segments"] == []


def test_members_are_paged_by_profile_id_and_answerable_at_an_instant(api: Api) -> None:
    put(api, INDONESIA)
    ids = people(api, "ID", "ID", "ID", "SG")
    add_members(api, "indonesia", ids, exited={ids[3]: 5})
    ordered = sorted(ids[:3])
    first = api.client.get("/v1/segments/indonesia/members", params={"limit": 2}, headers=api.auth)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [m["profile_id"] for m in page["members"]] == ordered[:2]
    assert page["next"] == ordered[1]
    assert set(page["members"][0]) == {"profile_id", "email", "phone", "entered_at"}
    assert page["members"][0]["email"].endswith("@example.com")
    second = api.client.get("/v1/segments/indonesia/members", params={"limit": 2, "after": page["next"]},
                            headers=api.auth).json()
    assert ([m["profile_id"] for m in second["members"]], second["next"]) == (ordered[2:], None)

    now = api.sf.clock.now()
    at = api.client.get("/v1/segments/indonesia/members", headers=api.auth,
                        params={"at": (now + timedelta(hours=3, minutes=30)).isoformat()}).json()
    assert {m["profile_id"] for m in at["members"]} == set(ids)  # ids[3] left at +5h
    later = api.client.get("/v1/segments/indonesia/members", headers=api.auth,
                           params={"at": (now + timedelta(hours=6)).isoformat()}).json()
    assert {m["profile_id"] for m in later["members"]} == set(ids[:3])
    before = api.client.get("/v1/segments/indonesia/members", headers=api.auth,
                            params={"at": (now - timedelta(hours=1)).isoformat()}).json()
    assert before["members"] == []


def test_member_paging_inputs_are_bounded(sqlite_api: Api) -> None:
    put(sqlite_api, INDONESIA)
    for params in ({"limit": 1001}, {"limit": 0}, {"at": "2026-10-01T00:00:00"}, {"at": "yesterday"},
                   {"after": "x" * 65}, {"at": "0001-01-01T00:00:00+14:00"}):
        resp = sqlite_api.client.get("/v1/segments/indonesia/members", params=params, headers=sqlite_api.auth)
        assert resp.status_code == 422, (params, resp.text)
    assert sqlite_api.client.get("/v1/segments/nope/members", headers=sqlite_api.auth).status_code == 404


def test_export_streams_csv(api: Api) -> None:
    put(api, INDONESIA)
    ids = people(api, "ID", "ID")
    add_members(api, "indonesia", ids)
    resp = api.client.get("/v1/segments/indonesia/export.csv", headers=api.auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="indonesia.csv"' in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["profile_id"] for r in rows] == sorted(ids)
    assert list(rows[0]) == ["profile_id", "email", "phone", "entered_at"]
    assert rows[0]["email"].endswith("@example.com") and "T" in rows[0]["entered_at"]
    assert api.client.get("/v1/segments/nope/export.csv", headers=api.auth).status_code == 404


def test_export_reads_a_page_at_a_time(sqlite_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from storeflow.service import segments as service

    monkeypatch.setattr(service, "EXPORT_PAGE", 2)
    put(sqlite_api, INDONESIA)
    ids = people(sqlite_api, "ID", "ID", "ID", "ID", "ID")
    add_members(sqlite_api, "indonesia", ids)
    chunks = list(sqlite_api.sf.segments.export_csv("indonesia"))
    assert len(chunks) == 4  # the header, then pages of 2, 2 and 1
    assert "".join(chunks).count("\r\n") == 6


def test_delete_is_refused_while_in_use_then_removes_members_and_keeps_history(api: Api) -> None:
    put(api, INDONESIA)
    ids = people(api, "ID")
    add_members(api, "indonesia", ids)
    put(api, "id: wider\nname: Wider\ncondition: {any: [{in_segment: indonesia}, {field: profile.country, eq: SG}]}\n")
    flow = ("id: welcome-id\nname: Welcome\nstatus: live\ntrigger: {segment: indonesia, on: entered}\n"
            "steps:\n  - {action: tag, tags: [id]}\n")
    assert api.upload_flow(flow).status_code == 201
    with api.sf.store.transaction() as tx:
        sql_connection(tx).execute(campaigns.insert().values(
            id="flash-sale", name="Flash sale", status="scheduled",
            definition={"audience": {"include": ["wider"], "exclude": ["indonesia"]}},
            created_at=api.sf.clock.now(), updated_at=api.sf.clock.now()))

    refused = api.client.delete("/v1/segments/indonesia", headers=api.auth)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "live flow 'welcome-id' (its trigger)" in detail
    assert "campaign 'flash-sale' (its audience)" in detail
    assert "segment 'wider' (in_segment)" in detail

    with api.sf.store.transaction() as tx:
        sql_connection(tx).execute(campaigns.update().values(status="sent"))
    assert api.client.post("/v1/flows/welcome-id/pause", headers=api.auth).status_code == 200
    put(api, "id: wider\nname: Wider\ncondition: {field: profile.country, in: [ID, SG]}\n")
    stayed = api.sf.clock.now() + timedelta(hours=1)
    api.sf.clock.set(stayed + timedelta(hours=1))  # type: ignore[attr-defined]  # a VirtualClock
    deleted = api.client.delete("/v1/segments/indonesia", headers=api.auth)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"segment_id": "indonesia", "deleted": True, "version": 1, "members_removed": 1}

    assert api.client.get("/v1/segments/indonesia", headers=api.auth).status_code == 404
    assert api.client.get("/v1/segments/indonesia/members", headers=api.auth).status_code == 404
    assert api.client.delete("/v1/segments/indonesia", headers=api.auth).status_code == 404
    at = api.client.get("/v1/segments/indonesia/members", headers=api.auth,
                        params={"at": stayed.isoformat()}).json()
    assert [m["profile_id"] for m in at["members"]] == ids  # "who was in it then" stays answerable
    assert [s["id"] for s in api.client.get("/v1/segments", headers=api.auth).json()["segments"]] == ["wider"]
    again = put(api, INDONESIA)  # brought back: computed again
    assert (again.status_code, again.json()["change"], again.json()["version"]) == (201, "created", 1)


def test_a_flow_testing_in_segment_blocks_delete(sqlite_api: Api) -> None:
    put(sqlite_api, INDONESIA)
    flow = ("id: tag-id\nname: Tag\nstatus: live\ntrigger: {event: order_placed}\nsteps:\n"
            "  - if: {in_segment: indonesia}\n    then: [{action: tag, tags: [id]}]\n")
    assert sqlite_api.upload_flow(flow).status_code == 201, sqlite_api.upload_flow(flow).text
    refused = sqlite_api.client.delete("/v1/segments/indonesia", headers=sqlite_api.auth)
    assert refused.status_code == 409
    assert "live flow 'tag-id' (tests in_segment)" in refused.json()["detail"]


def test_preview_counts_without_writing(api: Api) -> None:
    put(api, INDONESIA)
    ids = people(api, "ID", "SG", "ID")
    with api.sf.store.read() as tx:
        revision, before = tx.segments_revision(), tx.list_segments()
    by_id = api.client.post("/v1/segments/preview", params={"id": "indonesia"}, headers=api.auth)
    assert by_id.status_code == 200, by_id.text
    body = by_id.json()
    assert (body["segment_id"], body["count"]) == ("indonesia", 2)
    assert [s["profile_id"] for s in body["sample"]] == sorted([ids[0], ids[2]])
    assert {s["email"] for s in body["sample"]} == {"p0@example.com", "p2@example.com"}
    assert isinstance(body["warnings"], list)

    document = INDONESIA.replace("id: indonesia", "id: singapore").replace("eq: ID", "eq: SG")
    by_document = api.client.post("/v1/segments/preview", content=document,
                                  headers={**api.auth, "Content-Type": "application/yaml"})
    assert by_document.status_code == 200, by_document.text
    assert by_document.json()["count"] == 1
    with api.sf.store.read() as tx:
        assert (tx.segments_revision(), tx.list_segments()) == (revision, before)  # nothing written
    assert api.client.get("/v1/segments/singapore", headers=api.auth).status_code == 404

    both = api.client.post("/v1/segments/preview", params={"id": "indonesia"}, content=document,
                           headers={**api.auth, "Content-Type": "application/yaml"})
    assert both.status_code == 422
    assert api.client.post("/v1/segments/preview", headers=api.auth).status_code == 422
    assert api.client.post("/v1/segments/preview", params={"id": "nope"}, headers=api.auth).status_code == 404


def test_schema_route_serves_a_valid_json_schema(sqlite_api: Api) -> None:
    resp = sqlite_api.client.get("/v1/segments/schema", headers=sqlite_api.auth)
    assert resp.status_code == 200
    schema = resp.json()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(
        {"id": "indonesia", "name": "X", "condition": {"field": "profile.country", "eq": "ID"}})


def test_bounded_and_typed_bodies_and_private_key(sqlite_api: Api) -> None:
    huge = INDONESIA + "description: " + "a" * MAX_SEGMENT_BYTES + "\n"
    too_big = put(sqlite_api, huge)
    assert too_big.status_code == 413
    assert put(sqlite_api, INDONESIA, media="text/plain").status_code == 415
    empty = put(sqlite_api, "")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    public = sqlite_api.client.put("/v1/segments", content=INDONESIA,
                                   headers={**sqlite_api.public_auth, "Content-Type": "application/yaml"})
    assert public.status_code == 403
    assert sqlite_api.client.get("/v1/segments", headers=sqlite_api.public_auth).status_code == 403
    openapi = sqlite_api.client.get("/openapi.json").json()
    assert {"/v1/segments", "/v1/segments/validate", "/v1/segments/preview", "/v1/segments/schema",
            "/v1/segments/{segment_id}", "/v1/segments/{segment_id}/members",
            "/v1/segments/{segment_id}/export.csv"} <= set(openapi["paths"])


def test_the_membership_engine_fills_an_applied_segment_and_a_new_version_recomputes_it(api: Api) -> None:
    subscribed = "id: subscribed\nname: Subscribed\ncondition: {field: profile.consent.email, eq: subscribed}\n"
    put(api, subscribed)
    ids = []
    for i, consent in enumerate(("subscribed", "unsubscribed", "subscribed")):
        resp = api.client.post("/v1/profiles/identify", headers=api.auth, json={
            "email": f"e{i}@example.com", "profile": {"consent": {"email": consent}}})
        ids.append(resp.json()["profile_id"])
    api.sf.drain()
    shown = api.client.get("/v1/segments/subscribed", headers=api.auth).json()
    assert (shown["computed_version"], shown["member_count"]) == (1, 2)
    members = api.client.get("/v1/segments/subscribed/members", headers=api.auth).json()["members"]
    assert [m["profile_id"] for m in members] == sorted([ids[0], ids[2]])

    put(api, subscribed.replace("eq: subscribed", "eq: unsubscribed"))
    assert api.client.get("/v1/segments/subscribed", headers=api.auth).json()["computed_version"] is None
    api.sf.drain()
    shown = api.client.get("/v1/segments/subscribed", headers=api.auth).json()
    assert (shown["computed_version"], shown["member_count"]) == (2, 1)
    members = api.client.get("/v1/segments/subscribed/members", headers=api.auth).json()["members"]
    assert [m["profile_id"] for m in members] == [ids[1]]


def test_apply_all_refuses_one_id_twice_and_orders_by_reference(sqlite_api: Api) -> None:
    from storeflow.errors import SegmentValidationError
    from storeflow.segments import load_segment

    first = load_segment("id: a\nname: A\ncondition: {in_segment: b}\n")
    second = load_segment("id: b\nname: B\ncondition: {field: profile.country, eq: ID}\n")
    with pytest.raises(SegmentValidationError, match=r"segment id 'a' is given twice \(also in one\.yaml\)"):
        sqlite_api.sf.segments.apply_all([first, first], ["one.yaml", "two.yaml"])
    results = sqlite_api.sf.segments.apply_all([first, second])
    assert [(r.segment_id, r.change) for r in results] == [("a", "created"), ("b", "created")]


def test_concurrent_applies_cannot_close_a_cycle_unseen(pg_url: str) -> None:
    """PostgreSQL: two applies, each adding half of a cycle, meet at the segments revision row: the
    second waits for the first, then sees its reference and is refused."""
    import threading
    import time
    from datetime import UTC, datetime

    from sqlalchemy import text

    from storeflow.app import Storeflow
    from storeflow.clock import VirtualClock
    from storeflow.errors import SegmentValidationError
    from storeflow.segments import load_segment
    from storeflow.settings import Settings

    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    first, second = (Storeflow(Settings(database_url=pg_url), clock=clock) for _ in range(2))
    try:
        for sid in ("a", "b"):
            first.segments.apply(load_segment(f"id: {sid}\nname: {sid}\ncondition: {{field: profile.x, eq: 1}}\n"))
        outcomes: dict[str, str] = {}

        def apply(sf: Storeflow, sid: str, other: str) -> None:
            try:
                sf.segments.apply(load_segment(f"id: {sid}\nname: {sid}\ncondition: {{in_segment: {other}}}\n"))
                outcomes[sid] = "applied"
            except SegmentValidationError as exc:
                outcomes[sid] = str(exc)

        with first.store.transaction() as holder:
            holder.bump_segments_revision()  # the row both applies need first
            conn = sql_connection(holder)
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            threads = [threading.Thread(target=apply, args=(first, "a", "b")),
                       threading.Thread(target=apply, args=(second, "b", "a"))]
            for thread in threads:
                thread.start()
            waiting = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
            deadline = time.monotonic() + 30
            with first.store.read() as probe:
                probe_conn = sql_connection(probe)
                while probe_conn.execute(waiting, {"pid": pid}).scalar_one() < 1:
                    assert time.monotonic() < deadline, "no apply reached the revision row"
                    time.sleep(0.01)
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes.values())[0] == "applied"
        refused = sorted(outcomes.values())[1]
        assert "the segment refers to itself" in refused, outcomes
    finally:
        first.close()
        second.close()

"""POST /v1/events and /v1/events/batch."""

from __future__ import annotations

from api_harness import Api, ApiFactory, checkout

from storeflow.engine.ingest import MAX_BATCH


def test_single_event_is_accepted_then_duplicate(api: Api) -> None:
    first = api.client.post("/v1/events", json=checkout("ord-1"), headers=api.auth)
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "accepted"
    assert body["event_id"].startswith("evt_")
    assert body["profile_id"].startswith("prof_")
    assert body["error"] is None

    again = api.client.post("/v1/events", json=checkout("ord-1"), headers=api.auth)
    assert again.status_code == 202
    assert again.json()["status"] == "duplicate"
    assert again.json()["event_id"] is None


def test_segment_style_names_are_accepted(api: Api) -> None:
    resp = api.client.post("/v1/events", headers=api.auth, json={  # userId needs a private key
        "event": "Checkout Started", "messageId": "seg-1", "userId": "u-9", "email": "Seg@Example.com",
        "properties": {"cart_id": "c-9", "revenue": "10.00"},
    })
    assert resp.status_code == 202, resp.text
    assert api.sf.views.find_profile("email", "seg@example.com") == resp.json()["profile_id"]


def test_event_the_engine_rejects_is_422_naming_the_field(api: Api) -> None:
    resp = api.client.post("/v1/events", headers=api.auth,
                           json={"type": "order_placed", "email": "ana@example.com", "phone": "12"})
    assert resp.status_code == 422
    body = resp.json()
    assert body["detail"].startswith("phone:")
    assert body["result"]["status"] == "rejected"


def test_wrong_field_type_is_422_with_the_field_path(sqlite_api: Api) -> None:
    resp = sqlite_api.client.post("/v1/events", headers=sqlite_api.auth,
                                  json={"type": "order_placed", "properties": "not an object"})
    assert resp.status_code == 422
    errors = resp.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "properties"]]


def test_unknown_field_is_422_with_the_field_path(sqlite_api: Api) -> None:
    resp = sqlite_api.client.post("/v1/events", headers=sqlite_api.auth,
                                  json={"type": "order_placed", "emial": "ana@example.com"})
    assert resp.status_code == 422
    assert ["body", "emial"] in [e["loc"] for e in resp.json()["detail"]]


def test_malformed_json_is_422(sqlite_api: Api) -> None:
    resp = sqlite_api.client.post("/v1/events", content=b'{"type": "order_placed",',
                                  headers={**sqlite_api.auth, "Content-Type": "application/json"})
    assert resp.status_code == 422
    (error,) = resp.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body"


def test_batch_reports_each_item(api: Api) -> None:
    api.client.post("/v1/events", json=checkout("seen"), headers=api.public_auth)  # same key kind, same source
    events = [
        checkout("b1"),
        {"type": "order_placed", "email": "not-an-email"},
        checkout("seen"),
        {"type": "checkout_started", "properties": "oops"},
        "not an object",
        checkout("b1"),  # same id twice in one batch
    ]
    resp = api.client.post("/v1/events/batch", json={"events": events}, headers=api.public_auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [r["index"] for r in body["results"]] == list(range(6))
    assert [r["status"] for r in body["results"]] == [
        "accepted", "rejected", "duplicate", "rejected", "rejected", "duplicate"]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 2, 3)
    results = body["results"]
    assert results[0]["event_id"]
    assert results[0]["profile_id"]
    assert results[1]["error"].startswith("email:")
    assert results[3]["error"].startswith("properties:")
    assert results[4]["error"]  # not an object
    assert set(results[0]) == {"index", "status", "event_id", "profile_id", "error", "runs_started"}


def test_batch_over_the_limit_is_413(sqlite_api: Api) -> None:
    events = [{"type": "product_viewed"}] * (MAX_BATCH + 1)
    resp = sqlite_api.client.post("/v1/events/batch", json={"events": events}, headers=sqlite_api.auth)
    assert resp.status_code == 413
    assert f"at most {MAX_BATCH} events" in resp.json()["detail"]
    assert f"has {MAX_BATCH + 1}" in resp.json()["detail"]


def test_batch_body_must_have_events(sqlite_api: Api) -> None:
    resp = sqlite_api.client.post("/v1/events/batch", json={"items": []}, headers=sqlite_api.auth)
    assert resp.status_code == 422
    locs = [e["loc"] for e in resp.json()["detail"]]
    assert ["body", "events"] in locs


def test_body_size_cap_is_413(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(max_body_bytes=1024)
    big = checkout("big", properties={"cart_id": "c", "note": "x" * 2000})
    resp = api.client.post("/v1/events", json=big, headers=api.auth)
    assert resp.status_code == 413
    assert "1024 bytes" in resp.json()["detail"]

    def chunks() -> object:  # no Content-Length: counted while reading
        yield b'{"type": "product_viewed", "properties": {"n": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}}'

    streamed = api.client.post("/v1/events", content=chunks(),  # type: ignore[arg-type]
                               headers={**api.auth, "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert api.client.post("/v1/events", json=checkout("small"), headers=api.auth).status_code == 202

"""Profiles over HTTP: identify, show with timeline, look up by identity."""

from __future__ import annotations

from api_harness import Api, checkout


def test_identify_creates_then_updates_the_profile(api: Api) -> None:
    body = {"email": "Ana@Example.com", "customer_id": "c-1",
            "profile": {"timezone": "Asia/Jakarta", "locale": "id_ID", "consent": {"email": "subscribed"},
                        "properties": {"tier": "gold"}, "first_name": "Ana"}}
    first = api.client.post("/v1/profiles/identify", json=body, headers=api.auth)
    assert first.status_code == 200, first.text
    profile_id = first.json()["profile_id"]
    assert first.json()["result"]["status"] == "accepted"

    # Changing a field and then changing it back must both apply (identify is an upsert).
    for tz in ("Europe/Lisbon", "Asia/Jakarta"):
        resp = api.client.post("/v1/profiles/identify", headers=api.auth,
                               json={"email": "ana@example.com", "profile": {"timezone": tz}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["profile_id"] == profile_id
        assert api.client.get(f"/v1/profiles/{profile_id}", headers=api.auth).json()["timezone"] == tz

    profile = api.client.get(f"/v1/profiles/{profile_id}", headers=api.auth).json()
    assert profile["email"] == "ana@example.com"
    assert profile["properties"] == {"tier": "gold", "first_name": "Ana"}
    assert profile["locale"] == "id_ID"
    assert profile["consent_email"] == "subscribed"
    assert {"kind": "customer", "value": "api:c-1"} in profile["identities"]


def test_identify_needs_an_identity_and_valid_fields(sqlite_api: Api) -> None:
    none = sqlite_api.client.post("/v1/profiles/identify", json={"profile": {"locale": "pt_BR"}},
                                  headers=sqlite_api.auth)
    assert none.status_code == 422
    assert "at least one of" in str(none.json()["detail"])

    bad_tz = sqlite_api.client.post("/v1/profiles/identify", headers=sqlite_api.auth,
                                    json={"email": "a@example.com", "profile": {"timezone": "Mars/Base"}})
    assert bad_tz.status_code == 422
    assert bad_tz.json()["detail"].startswith("profile.timezone:")


def test_profile_with_timeline(api: Api) -> None:
    ids = []
    for n in range(3):
        resp = api.client.post("/v1/events", json=checkout(f"tl{n}", phone="+5511987654321"), headers=api.auth)
        ids.append(resp.json()["event_id"])
    profile_id = resp.json()["profile_id"]

    full = api.client.get(f"/v1/profiles/{profile_id}", headers=api.auth)
    assert full.status_code == 200
    profile = full.json()
    assert profile["id"] == profile_id
    assert sorted(e["id"] for e in profile["timeline"]) == sorted(ids)
    assert {"kind": "email", "value": "ana@example.com"} in profile["identities"]
    assert {"kind": "phone", "value": "+5511987654321"} in profile["identities"]
    assert set(profile) >= {"identities", "timeline", "orders", "runs"}

    short = api.client.get(f"/v1/profiles/{profile_id}", params={"timeline": 1}, headers=api.auth).json()
    assert len(short["timeline"]) == 1


def test_lookup_by_identity(api: Api) -> None:
    resp = api.client.post("/v1/events", headers=api.auth,
                           json=checkout("lk", email="Bo@Example.com", phone="+5511987654321", customer_id="77"))
    profile_id = resp.json()["profile_id"]
    for params in ({"email": "bo@example.com"}, {"email": " BO@example.com"}, {"phone": "+55 11 98765-4321"},
                   {"customer_id": "77"}, {"customer_id": "api:77"}):
        found = api.client.get("/v1/profiles", params=params, headers=api.auth)
        assert found.status_code == 200, (params, found.text)
        assert found.json()["id"] == profile_id

    missing = api.client.get("/v1/profiles", params={"email": "nobody@example.com"}, headers=api.auth)
    assert missing.status_code == 404
    assert "nobody@example.com" in missing.json()["detail"]


def test_lookup_needs_exactly_one_valid_identity(sqlite_api: Api) -> None:
    h = sqlite_api.auth
    assert sqlite_api.client.get("/v1/profiles", headers=h).status_code == 422
    two = sqlite_api.client.get("/v1/profiles", params={"email": "a@example.com", "phone": "+5511987654321"},
                                headers=h)
    assert two.status_code == 422
    bad = sqlite_api.client.get("/v1/profiles", params={"email": "nope"}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("email:")


def test_unknown_profile_is_404(sqlite_api: Api) -> None:
    resp = sqlite_api.client.get("/v1/profiles/prof_missing", headers=sqlite_api.auth)
    assert resp.status_code == 404

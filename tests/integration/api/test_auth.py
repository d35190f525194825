"""API keys: 401 without a usable key, 403 for a public key on a private route, key cache TTL."""

from __future__ import annotations

import pytest
from api_harness import Api, ApiFactory, checkout

PRIVATE_ROUTES = [
    ("GET", "/v1/flows"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/profiles?email=ana@example.com"),
    ("POST", "/v1/profiles/identify"),
    ("POST", "/v1/flows/validate"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), [*PRIVATE_ROUTES, ("POST", "/v1/events")])
def test_missing_key_is_401_with_www_authenticate(sqlite_api: Api, method: str, path: str) -> None:
    resp = sqlite_api.client.request(method, path, json={})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert "missing API key" in resp.json()["detail"]


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer sf_priv_not-a-real-key"},
    {"X-Api-Key": "sf_pub_not-a-real-key"},
    {"Authorization": "Bearer nonsense"},
])
def test_unknown_key_is_401(sqlite_api: Api, headers: dict[str, str]) -> None:
    resp = sqlite_api.client.get("/v1/flows", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.json() == {"detail": "invalid or revoked API key"}


def test_non_bearer_authorization_does_not_count_as_a_key(sqlite_api: Api) -> None:
    resp = sqlite_api.client.get("/v1/flows", headers={"Authorization": f"Basic {sqlite_api.private_key}"})
    assert resp.status_code == 401
    assert "missing API key" in resp.json()["detail"]


def test_revoked_key_is_401(sqlite_api: Api) -> None:
    key_id, secret = sqlite_api.sf.keys.create("private", "to revoke")
    assert sqlite_api.sf.keys.revoke(key_id)
    resp = sqlite_api.client.get("/v1/flows", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 401
    assert resp.json()["detail"] == "invalid or revoked API key"


def test_revoked_key_stops_working_once_the_cache_ttl_passes(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(key_cache_ttl_s=5.0)
    key_id, secret = api.sf.keys.create("private", "cached")
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/flows", headers=headers).status_code == 200
    api.sf.keys.revoke(key_id)
    # Within the TTL the cached lookup still answers (documented: up to key_cache_ttl_s seconds).
    api.timer.advance(4.9)
    assert api.client.get("/v1/flows", headers=headers).status_code == 200
    api.timer.advance(0.2)
    assert api.client.get("/v1/flows", headers=headers).status_code == 401


@pytest.mark.parametrize(("method", "path"), PRIVATE_ROUTES)
def test_public_key_on_private_route_is_403(sqlite_api: Api, method: str, path: str) -> None:
    resp = sqlite_api.client.request(method, path, json={}, headers=sqlite_api.public_auth)
    assert resp.status_code == 403
    assert "needs a private API key" in resp.json()["detail"]


def test_public_key_can_ingest_with_either_header(sqlite_api: Api) -> None:
    one = sqlite_api.client.post("/v1/events", json=checkout("p1"), headers=sqlite_api.public_auth)
    assert one.status_code == 202, one.text
    assert one.json()["status"] == "accepted"
    batch = sqlite_api.client.post("/v1/events/batch", json={"events": [checkout("p2")]},
                                   headers={"X-Api-Key": sqlite_api.public_key})
    assert batch.status_code == 200, batch.text
    assert batch.json()["accepted"] == 1


def test_key_is_checked_before_the_body_is_read(sqlite_api: Api) -> None:
    # Malformed JSON from an anonymous caller is refused as unauthenticated, not parsed.
    resp = sqlite_api.client.post("/v1/events", content=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert resp.status_code == 401


def test_key_kind_is_checked_before_the_body_is_read(sqlite_api: Api) -> None:
    resp = sqlite_api.client.post("/v1/profiles/identify", content=b"{not json",
                                  headers={**sqlite_api.public_auth, "Content-Type": "application/json"})
    assert resp.status_code == 403


def test_unknown_v1_path_needs_a_key_too(sqlite_api: Api) -> None:
    assert sqlite_api.client.get("/v1/nothing-here").status_code == 401
    assert sqlite_api.client.get("/v1/nothing-here", headers=sqlite_api.auth).status_code == 404


def test_health_and_docs_need_no_key(sqlite_api: Api) -> None:
    assert sqlite_api.client.get("/health").status_code == 200
    assert sqlite_api.client.get("/docs").status_code == 200
    spec = sqlite_api.client.get("/openapi.json").json()
    assert "/v1/events/batch" in spec["paths"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])

"""Health, metrics, error mapping and JSON encoding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from api_harness import CART_FLOW, Api, checkout

from storeflow.api.encoding import dumps
from storeflow.errors import StorageError


@contextmanager
def _broken_transaction() -> Iterator[None]:
    raise StorageError("database error: OperationalError: connection refused (password=secret)")
    yield  # pragma: no cover


def test_health_ok(api: Api) -> None:
    resp = api.client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": "ok", "backend": api.sf.store.backend}
    assert api.sf.store.backend in ("sqlite", "postgresql")


def test_health_503_when_the_database_fails(sqlite_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_api.sf.store, "transaction", _broken_transaction)
    monkeypatch.setattr(sqlite_api.sf.store, "read", _broken_transaction)
    resp = sqlite_api.client.get("/health")
    assert resp.status_code == 503
    assert resp.json() == {"status": "error", "database": "unavailable", "backend": "sqlite"}


def test_storage_error_is_503_without_the_driver_message(sqlite_api: Api,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite_api.client.get("/v1/runs", headers=sqlite_api.auth)  # the key is now cached
    monkeypatch.setattr(sqlite_api.sf.store, "transaction", _broken_transaction)
    monkeypatch.setattr(sqlite_api.sf.store, "read", _broken_transaction)
    resp = sqlite_api.client.get("/v1/runs", headers=sqlite_api.auth)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert "secret" not in resp.text
    # An uncached key cannot be checked at all: 503 as well, not 401.
    key = sqlite_api.public_key
    assert sqlite_api.client.post("/v1/events", json={}, headers={"X-Api-Key": key}).status_code == 503


def test_metrics_need_a_private_key(sqlite_api: Api) -> None:
    assert sqlite_api.client.get("/metrics").status_code == 401
    assert sqlite_api.client.get("/metrics", headers=sqlite_api.public_auth).status_code == 403


def test_metrics_content(api: Api) -> None:
    api.upload_flow(CART_FLOW)
    api.client.post("/v1/events/batch", headers=api.auth,
                    json={"events": [checkout("m1"), checkout("m1"), {"type": "x", "properties": 1}]})
    api.sf.drain()
    run_id = api.client.get("/v1/runs", headers=api.auth).json()["runs"][0]["id"]
    api.client.get(f"/v1/runs/{run_id}", headers=api.auth)
    api.client.get("/v1/flows", headers=api.public_auth)  # 403, still counted

    resp = api.client.get("/metrics", headers=api.auth)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'storeflow_events_ingested_total{status="accepted"} 1.0' in text
    assert 'storeflow_events_ingested_total{status="duplicate"} 1.0' in text
    assert 'storeflow_events_ingested_total{status="rejected"} 1.0' in text
    assert ('storeflow_http_requests_total{method="GET",route="/v1/runs/{run_id}",status="200"} 1.0'
            in text)
    assert 'storeflow_http_requests_total{method="GET",route="/v1/flows",status="403"} 1.0' in text
    assert 'storeflow_http_request_duration_seconds_bucket{le="0.005",method="POST"' in text
    assert 'storeflow_runs{status="completed"} 1.0' in text
    assert "storeflow_database_up 1.0" in text
    assert api.sf.settings.database_url not in text


def test_each_app_has_its_own_registry(sqlite_api: Api) -> None:
    from storeflow.api import create_app

    create_app(sqlite_api.sf)  # a second app on the same engine must not clash with the first
    sqlite_api.client.post("/v1/events", json=checkout("r1"), headers=sqlite_api.auth)
    text = sqlite_api.client.get("/metrics", headers=sqlite_api.auth).text
    assert 'storeflow_events_ingested_total{status="accepted"} 1.0' in text


def test_json_encoding_keeps_decimals_exact_and_dates_iso() -> None:
    value = {"total": Decimal("19.90"), "at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC), "tags": ("a",)}
    assert json.loads(dumps(value)) == {"total": "19.90", "at": "2026-03-02T09:30:00+00:00", "tags": ["a"]}


def test_order_money_is_exact_and_times_are_iso(api: Api) -> None:
    resp = api.client.post("/v1/events", headers=api.auth, json={
        "type": "order_placed", "id": "o1", "email": "ana@example.com",
        "properties": {"order_id": "1001", "total": "19.90", "currency": "USD",
                       "items": [{"sku": "A", "quantity": 1, "price": "19.90"}]}})
    assert resp.status_code == 202, resp.text
    profile = api.client.get(f"/v1/profiles/{resp.json()['profile_id']}", headers=api.auth).json()
    assert profile["total_spent"] == {"USD": "19.90"}
    (order,) = profile["orders"]
    assert order["id"] == "1001"
    assert order["line_items"][0]["price"] == "19.90"
    assert order["placed_at"] == "2026-03-02T09:00:00+00:00"

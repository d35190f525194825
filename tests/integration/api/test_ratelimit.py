"""Token buckets: 429 with Retry-After and X-RateLimit headers, refilled by (fake) time; per key for
private keys, per client address for public keys; bounded memory."""

from __future__ import annotations

import re

import pytest
from api_harness import Api, ApiFactory, TestClient, checkout
from pydantic import ValidationError

from storeflow.api.ratelimit import TokenBucketLimiter, client_address, parse_networks
from storeflow.settings import Settings


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(lambda: now[0])
    assert [limiter.take("k", rate=2.0, burst=3).allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.take("k", rate=2.0, burst=3)
    assert not denied.allowed
    assert denied.retry_after_s == 0.5
    assert denied.headers() == {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "Retry-After": "1"}
    now[0] += 0.5
    assert limiter.take("k", rate=2.0, burst=3).allowed
    assert limiter.take("other", rate=2.0, burst=3).remaining == 2  # buckets are per key


def test_rate_limit_answers_429_with_retry_after(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(rate_limit_public_per_s=0.5, rate_limit_public_burst=2)
    headers = api.public_auth
    first = api.client.post("/v1/events", json=checkout("r1"), headers=headers)
    assert first.status_code == 202
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert api.client.post("/v1/events", json=checkout("r2"), headers=headers).status_code == 202

    limited = api.client.post("/v1/events", json=checkout("r3"), headers=headers)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert limited.headers["X-RateLimit-Limit"] == "2"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "rate limit" in limited.json()["detail"]
    assert api.client.get("/v1/runs", headers=api.auth).status_code == 200  # other key, own bucket

    api.timer.advance(2.0)
    again = api.client.post("/v1/events", json=checkout("r3"), headers=headers)
    assert again.status_code == 202
    assert again.json()["status"] == "accepted"  # r3 is new: the 429 stored nothing


def test_private_keys_use_the_private_limits(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(rate_limit_private_per_s=1, rate_limit_private_burst=1)
    assert api.client.get("/v1/flows", headers=api.auth).status_code == 200
    resp = api.client.get("/v1/flows", headers=api.auth)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert "private keys" in resp.json()["detail"]


def _client_at(api: Api, address: str) -> TestClient:
    """A second client on the same app, connecting from ``address``."""
    return TestClient(api.client.app, client=(address, 40000))


def _send(client: TestClient, api: Api, event_id: str, headers: dict[str, str] | None = None) -> int:
    resp = client.post("/v1/events", json=checkout(event_id), headers={**api.public_auth, **(headers or {})})
    return resp.status_code


def test_public_key_limit_is_per_client_address(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(rate_limit_public_per_s=0.5, rate_limit_public_burst=2)
    ana, bo = _client_at(api, "203.0.113.1"), _client_at(api, "203.0.113.2")
    assert [_send(ana, api, f"a{i}") for i in range(3)] == [202, 202, 429]
    limited = ana.post("/v1/events", json=checkout("a9"), headers=api.public_auth)
    assert "client address" in limited.json()["detail"]
    # The same storefront key from another visitor has its own bucket.
    assert [_send(bo, api, f"b{i}") for i in range(3)] == [202, 202, 429]


def test_private_key_limit_stays_per_key(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(rate_limit_private_per_s=1, rate_limit_private_burst=1)
    one, two = _client_at(api, "203.0.113.1"), _client_at(api, "203.0.113.2")
    assert one.get("/v1/flows", headers=api.auth).status_code == 200
    assert two.get("/v1/flows", headers=api.auth).status_code == 429


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(rate_limit_public_per_s=0.5, rate_limit_public_burst=1)
    proxy = _client_at(api, "10.0.0.5")
    # Untrusted by default: a client cannot pick a fresh bucket per request by inventing the header.
    assert _send(proxy, api, "x1", {"X-Forwarded-For": "198.51.100.1"}) == 202
    assert _send(proxy, api, "x2", {"X-Forwarded-For": "198.51.100.2"}) == 429


def test_trusted_proxy_forwards_the_client_address(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(rate_limit_public_per_s=0.5, rate_limit_public_burst=1, trusted_proxies=["10.0.0.0/8"])
    proxy = _client_at(api, "10.0.0.5")
    assert _send(proxy, api, "y1", {"X-Forwarded-For": "198.51.100.1"}) == 202
    assert _send(proxy, api, "y2", {"X-Forwarded-For": "198.51.100.2"}) == 202  # another visitor
    assert _send(proxy, api, "y3", {"X-Forwarded-For": "198.51.100.1"}) == 429  # the first one again
    # Whatever a client writes to the left of what the proxy appended does not count.
    assert _send(proxy, api, "y4", {"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}) == 429
    # Two trusted hops: the client is the rightmost untrusted address.
    assert _send(proxy, api, "y5", {"X-Forwarded-For": "198.51.100.3, 10.1.1.1"}) == 202
    assert _send(proxy, api, "y6", {"X-Forwarded-For": "198.51.100.3"}) == 429


def test_client_address_rules() -> None:
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    assert client_address("203.0.113.9", ["198.51.100.1"], trusted) == "203.0.113.9"
    assert client_address("10.0.0.1", ["198.51.100.1, 10.2.2.2"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.1", ["198.51.100.1", "10.2.2.2"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.1", [], trusted) == "10.0.0.1"
    assert client_address("10.0.0.1", ["not-an-ip"], trusted) == "10.0.0.1"
    assert client_address("10.0.0.1", ["[2001:db8::1]:443"], trusted) == "2001:db8::/64"
    assert client_address("2001:db8:0:0:aaaa::1", [], trusted) == "2001:db8::/64"  # one host, one /64
    assert client_address("::ffff:203.0.113.9", [], trusted) == "203.0.113.9"
    assert client_address(None, [], trusted) == "unknown"
    with pytest.raises(ValueError, match=re.escape("'10.0.0.300' is not an IP address")):
        parse_networks(["10.0.0.300"])


def test_trusted_proxies_setting_is_checked() -> None:
    with pytest.raises(ValidationError, match=re.escape("trusted_proxies: 'proxy.local' is not an IP address")):
        Settings(trusted_proxies=["proxy.local"])


def test_idle_buckets_are_dropped_and_the_count_is_capped() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(lambda: now[0], max_entries=100)
    for i in range(50):
        assert limiter.take(f"client-{i}", rate=1.0, burst=2).allowed
    assert len(limiter) == 50
    now[0] += 1.0  # every bucket has refilled: idle, the same as no bucket
    for i in range(50, 60):
        limiter.take(f"client-{i}", rate=1.0, burst=2)
    assert len(limiter) < 50  # idle ones went as new ones came

    busy = TokenBucketLimiter(lambda: now[0], max_entries=100)
    for i in range(10_000):  # many addresses at once, none idle yet
        busy.take(f"client-{i}", rate=1.0, burst=2)
    assert len(busy) == 100
    # The most recent clients keep their buckets (least recently used ones are dropped first).
    assert busy.take("client-9999", rate=1.0, burst=2).remaining == 0

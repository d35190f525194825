"""Per-key token buckets: 429 with Retry-After and X-RateLimit headers, refilled by (fake) time."""

from __future__ import annotations

from api_harness import ApiFactory, checkout

from storeflow.api.ratelimit import TokenBucketLimiter


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

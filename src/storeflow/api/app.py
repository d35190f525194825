"""``create_app(sf)``: the HTTP API over a ``Storeflow`` engine. OpenAPI docs at ``/docs``.

Middleware, outermost first: metrics (every request, by route template), body size cap (413),
guard (API key 401/403 and rate limit 429, before the body is read). Handlers are sync ``def``
functions (the store is sync SQLAlchemy); FastAPI runs them in its threadpool.
"""

from __future__ import annotations

from fastapi import FastAPI

from storeflow import __version__
from storeflow.api import campaigns, errors, events, flows, health, links, messages, profiles, runs, segments
from storeflow.api.auth import KeyAuthenticator
from storeflow.api.bodylimit import BodyLimitMiddleware
from storeflow.api.context import STATE_KEY, ApiContext
from storeflow.api.encoding import ApiJSONResponse
from storeflow.api.guard import GuardMiddleware
from storeflow.api.metrics import ApiMetrics, MetricsMiddleware
from storeflow.api.ratelimit import Timer, TokenBucketLimiter, monotonic
from storeflow.app import Storeflow

MAX_BODY_BYTES = 5 * 1024 * 1024


def create_app(sf: Storeflow, *, timer: Timer = monotonic, key_cache_ttl_s: float = 5.0,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """Build the API for ``sf``.

    ``timer`` is the wall-time source for rate limits, the key cache and latency metrics (tests
    pass a fake). ``key_cache_ttl_s``: how long a successful key lookup is reused, hence the longest
    a revoked key keeps working in this process.
    """
    app = FastAPI(title="storeflow", version=__version__, default_response_class=ApiJSONResponse,
                  description="Store data in, durable flows out. Authenticate with `Authorization: Bearer "
                              "<key>`; public keys may only send storefront events "
                              "(browsing, cart, checkout, identify).")
    api_metrics = ApiMetrics(sf.store)
    setattr(app.state, STATE_KEY, ApiContext(sf, api_metrics))
    routers = [module.router for module in (events, profiles, flows, segments, campaigns, runs, messages,
                                                      links, health)]
    for router in routers:
        app.include_router(router)
    known_routes = [r for r in app.router.routes if isinstance(getattr(r, "path", None), str)]
    known_routes += [r for router in routers for r in router.routes]
    errors.install(app)
    app.add_middleware(GuardMiddleware,
                       authenticator=KeyAuthenticator(sf.keys.authenticate, ttl=key_cache_ttl_s, now=timer),
                       limiter=TokenBucketLimiter(timer, max_entries=sf.settings.rate_limit_max_clients),
                       settings=sf.settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=api_metrics, routes=known_routes, now=timer)
    return app

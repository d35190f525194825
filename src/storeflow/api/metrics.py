"""Prometheus metrics, one registry per app (so tests can build many apps).

Counters and histograms are updated per request; run and outbox gauges are computed from the
database on each scrape. ``GET /metrics`` (in ``health.py``) needs a private key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storeflow.api.ratelimit import Timer, monotonic
from storeflow.engine.ingest import IngestResult
from storeflow.errors import StorageError
from storeflow.store.base import Store

log = logging.getLogger("storeflow.api")
INGEST_STATUSES = ("accepted", "duplicate", "rejected")


class StoreCollector(Collector):
    """Runs and outbox messages by status, read from the database at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        return []  # do not query the database when the collector is registered

    def collect(self) -> Iterable[Metric]:
        runs = GaugeMetricFamily("storeflow_runs", "Flow runs by status", labels=["status"])
        outbox = GaugeMetricFamily("storeflow_outbox_messages", "Outbox messages by status",
                                   labels=["status"])
        up = 1.0
        try:
            with self.store.read() as tx:
                run_counts, outbox_counts = tx.run_counts(), tx.outbox_counts()
        except StorageError:
            log.exception("metrics: could not read run and outbox counts")
            run_counts, outbox_counts, up = {}, {}, 0.0
        for status, n in sorted(run_counts.items()):
            runs.add_metric([status], n)
        for status, n in sorted(outbox_counts.items()):
            outbox.add_metric([status], n)
        yield runs
        yield outbox
        yield GaugeMetricFamily("storeflow_database_up", "1 if the last scrape could read the database",
                                value=up)


class ApiMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("storeflow_http_requests", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("storeflow_http_request_duration_seconds",
                                 "HTTP request latency by route template and status",
                                 ["method", "route", "status"], registry=self.registry)
        self.events = Counter("storeflow_events_ingested", "Events ingested through the API by result",
                              ["status"], registry=self.registry)
        for status in INGEST_STATUSES:
            self.events.labels(status)
        self.registry.register(StoreCollector(store))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def count_ingested(self, results: Sequence[IngestResult]) -> None:
        for status in INGEST_STATUSES:
            n = sum(1 for r in results if r.status == status)
            if n:
                self.events.labels(status).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The route's path template (``/v1/runs/{run_id}``), so labels stay few; "unmatched" for 404s.

    The router records the route it chose in ``scope["route"]``; requests refused before routing
    (by the guard or the body cap) are matched against ``routes`` here.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if match is Match.FULL and isinstance(path, str):
            return path
        if match is Match.PARTIAL and partial is None and isinstance(path, str):
            partial = path
    return partial or "unmatched"


class MetricsMiddleware:
    """Counts every HTTP request, including those the guard refuses."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics, routes: Sequence[BaseRoute],
                 now: Timer = monotonic) -> None:
        """``routes``: concrete routes (with a ``path``) to match requests that never reached the router."""
        self.app, self.metrics, self.routes, self.now = app, metrics, routes, now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.now()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            elapsed = self.now() - started
            self.metrics.observe(scope["method"], route_template(self.routes, scope), status, elapsed)


"""Operations: ``GET /health`` (no key) and ``GET /metrics`` (private key)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response

log = logging.getLogger("storeflow.api")
router = APIRouter(tags=["operations"], route_class=StrictJSONRoute)


class HealthOut(BaseModel):
    status: str
    database: str
    backend: str


@router.get("/health", response_model=HealthOut, summary="Liveness and database check (no key)",
            responses={503: {"description": "The database does not answer"}})
def health(ctx: Ctx) -> Response:
    backend = ctx.sf.store.backend
    try:
        with ctx.sf.store.read() as tx:
            tx.ping()
    except Exception as exc:  # any failure means unhealthy; details go to the log, not to anonymous callers
        log.error("health check: database failed: %s: %s", type(exc).__name__, exc)
        return json_response({"status": "error", "database": "unavailable", "backend": backend}, 503)
    return json_response({"status": "ok", "database": "ok", "backend": backend})


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (private key)",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(ctx: Ctx, _key: PrivateKey) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)

"""Runs: list with filters, and one run step by step with its message deliveries. Private key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from storeflow.api.auth import PrivateKey
from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute, json_response

MAX_OFFSET = 1_000_000_000  # beyond this a list is read by filters, not paged; keeps OFFSET in range
router = APIRouter(prefix="/v1/runs", tags=["runs"], route_class=StrictJSONRoute)


@router.get("", summary="Runs, newest first")
def list_runs(ctx: Ctx, _key: PrivateKey, *, flow_id: str | None = None, status: str | None = None,
              profile_id: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Response:
    runs = ctx.sf.views.runs(flow_id=flow_id, status=status, profile_id=profile_id,
                             limit=limit, offset=offset)
    return json_response({"runs": runs, "limit": limit, "offset": offset})


@router.get("/{run_id}", summary="A run with its steps (what each did and why) and messages (with attempts)")
def get_run(run_id: str, ctx: Ctx, _key: PrivateKey) -> Response:
    return json_response(ctx.sf.views.run(run_id))

"""What handlers need from the app: the engine facade and the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from storeflow.api.metrics import ApiMetrics
from storeflow.app import Storeflow

STATE_KEY = "storeflow_api"


@dataclass(frozen=True)
class ApiContext:
    sf: Storeflow
    metrics: ApiMetrics


def get_context(request: Request) -> ApiContext:
    ctx = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(ctx, ApiContext):
        raise RuntimeError("this app was not built by storeflow.api.create_app")
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]

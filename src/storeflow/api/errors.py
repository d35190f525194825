"""storeflow errors mapped to HTTP at the boundary. Every error body is ``{"detail": ...}``.

NotFoundError 404, ConflictError 409, ValidationError 422 (with ``problems``), StorageError 503
(the driver's message is logged, not returned: it can hold SQL and customer data).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from starlette.responses import Response

from storeflow.api.encoding import json_response
from storeflow.errors import ConflictError, NotFoundError, Problem, StorageError, ValidationError

log = logging.getLogger("storeflow.api")


def problems_json(problems: list[Problem]) -> list[dict[str, object]]:
    return [{"path": p.path, "message": p.message, "hint": p.hint, "line": p.line} for p in problems]


def validation_body(exc: ValidationError, what: str = "the input") -> dict[str, object]:
    n = len(exc.problems)
    first = exc.problems[0].format() if exc.problems else str(exc)
    more = f" (and {n - 1} more)" if n > 1 else ""
    return {"detail": f"{what} is not valid: {first}{more}", "problems": problems_json(exc.problems)}


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> Response:
        return json_response({"detail": str(exc)}, 404)

    @app.exception_handler(ConflictError)
    async def conflict(_: Request, exc: ConflictError) -> Response:
        return json_response({"detail": str(exc)}, 409)

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, exc: ValidationError) -> Response:
        return json_response(validation_body(exc), 422)

    @app.exception_handler(StorageError)
    async def storage(request: Request, exc: StorageError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc)
        return json_response({"detail": "the database is unavailable or failed; try again shortly"}, 503,
                             {"Retry-After": "1"})


"""storeflow errors mapped to HTTP at the boundary. Every error body is ``{"detail": ...}``.

NotFoundError 404, ConflictError 409, ValidationError 422 (with ``problems``), StorageError 503
(the driver's message is logged, not returned: it can hold SQL and customer data). A request
FastAPI refuses is 422 with FastAPI's error list, its echoed input made safe to write back.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


_ECHO_CHARS = 200
_ECHO_DEPTH = 6


def safe_echo(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of what a 422 echoes back: long strings cut, non-finite floats as text,
    nesting cut off, anything else as its text (lone surrogates are escaped when written)."""
    if value is None or isinstance(value, bool | int):
        return value if not isinstance(value, int) or value.bit_length() <= 64 else str(value)[:_ECHO_CHARS]
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= _ECHO_CHARS else value[:_ECHO_CHARS] + "..."
    if depth >= _ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(k)[:_ECHO_CHARS]: safe_echo(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [safe_echo(v, depth + 1) for v in list(value)[:50]]
    return safe_echo(str(value), depth)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        return json_response({"detail": safe_echo(list(exc.errors()))}, 422)

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


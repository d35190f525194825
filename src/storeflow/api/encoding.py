"""JSON responses for the API: Decimal as a string (exact money), datetimes and dates as ISO-8601.

Handlers return :class:`ApiJSONResponse` themselves instead of plain dicts, because FastAPI's
``jsonable_encoder`` would turn ``Decimal("19.90")`` into the float ``19.9``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from storeflow.jsonenc import dumps as _dumps


def dumps(value: Any) -> bytes:
    return _dumps(value).encode("utf-8")


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(content: Any, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> ApiJSONResponse:
    return ApiJSONResponse(content, status_code=status_code, headers=dict(headers) if headers else None)

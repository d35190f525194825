"""JSON responses for the API: Decimal as a string (exact money), datetimes and dates as ISO-8601.

Handlers return :class:`ApiJSONResponse` themselves instead of plain dicts, because FastAPI's
``jsonable_encoder`` would turn ``Decimal("19.90")`` into the float ``19.9``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from fastapi.responses import JSONResponse


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return json.dumps(value, default=_default, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(content: Any, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> ApiJSONResponse:
    return ApiJSONResponse(content, status_code=status_code, headers=dict(headers) if headers else None)

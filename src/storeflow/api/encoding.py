"""JSON in and out of the API.

Out: Decimal as a string (exact money), datetimes and dates as ISO-8601. Handlers return
:class:`ApiJSONResponse` themselves instead of plain dicts, because FastAPI's ``jsonable_encoder``
would turn ``Decimal("19.90")`` into the float ``19.9``. Text that cannot be UTF-8 (a lone
surrogate echoed back in an error) is written as its ``\\uXXXX`` escape instead of failing.

In: every router uses :class:`StrictJSONRoute`, which refuses with 422, before any handler runs,
what JSON does not allow or storage cannot hold: the ``NaN`` and ``Infinity`` literals Python's
parser accepts, strings with a NUL character or a lone UTF-16 surrogate, and a NUL in the path or
query. A cheap byte scan decides whether the parsed body needs a closer look at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from storeflow.jsonenc import dumps as _dumps
from storeflow.model.bounds import text_problem


def dumps(value: Any) -> bytes:
    return _dumps(value).encode("utf-8", "backslashreplace")


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(content: Any, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> ApiJSONResponse:
    return ApiJSONResponse(content, status_code=status_code, headers=dict(headers) if headers else None)


# A ``\u0000`` or surrogate escape somewhere in the body: only then are the parsed strings walked.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number (or null)")


def _bad_text(value: Any, where: str, depth: int = 0) -> str | None:
    """The path and problem of the first string that cannot be stored, or None."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{where}: {problem}" if problem else None
    if depth > 64:
        return None  # the validators refuse deeper documents themselves
    if isinstance(value, dict):
        for key, item in value.items():
            found = _bad_text(key, f"{where} (a key)") or _bad_text(item, f"{where}.{key}", depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _bad_text(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
    return None


PER_ITEM_LISTS = {"/v1/events/batch": "events"}
"""Bodies whose list (by route path, the body's key) is checked item by item by its handler, so that
one bad item is refused alone and the others are kept (ingest checks every string it stores)."""


def loads_strict(body: bytes, per_item: str | None = None) -> Any:
    """Parse a JSON body, raising ``json.JSONDecodeError`` (FastAPI's 422) for NaN/Infinity
    literals and for strings with NUL or lone surrogates, naming the place. With ``per_item``, the
    strings inside that top-level list are left to the handler."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        if "JSON number" not in str(exc):
            raise
        text = body.decode("utf-8", "replace")
        pos = min((i for i in (text.find("NaN"), text.find("Infinity")) if i >= 0), default=0)
        raise json.JSONDecodeError(str(exc), text, pos) from exc
    if _SUSPECT_ESCAPE.search(body):
        checked = value
        if per_item and isinstance(value, dict) and isinstance(value.get(per_item), list):
            checked = {k: v for k, v in value.items() if k != per_item}
        problem = _bad_text(checked, "body")
        if problem:
            raise json.JSONDecodeError(problem, body.decode("utf-8", "replace"), 0)
    return value


class _StrictRequest(Request):
    per_item: str | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body(), self.per_item)
        return self._json


def url_problem(request: Request) -> str | None:
    """Why the path or query cannot be used (a NUL character), or None."""
    if "\x00" in request.scope.get("path", "") or b"%00" in request.scope.get("query_string", b""):
        return "the path or query contains a NUL character (%00); remove it"
    return None


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON bodies are parsed strictly (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        per_item = PER_ITEM_LISTS.get(self.path)

        async def strict_handler(request: Request) -> Response:
            problem = url_problem(request)
            if problem:
                return json_response({"detail": problem}, 422)
            strict = _StrictRequest(request.scope, request.receive)
            strict.per_item = per_item
            return await handler(strict)

        return strict_handler

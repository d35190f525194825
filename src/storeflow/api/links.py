"""Links inside messages, served without an API key: each is a signed token.

- ``GET /u/{token}`` shows a confirmation page; ``POST /u/{token}`` unsubscribes at once. The POST
  is also the RFC 8058 one-click target that mail clients call from ``List-Unsubscribe-Post``.
- ``GET /t/o/{token}`` is the open-tracking pixel; ``GET /t/c/{token}`` records a click and
  redirects to the URL signed into the token (never to a URL from the query: no open redirect).
"""

from __future__ import annotations

import base64
import contextlib
import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from storeflow.api.context import Ctx
from storeflow.api.encoding import StrictJSONRoute
from storeflow.errors import NotFoundError, ValidationError

router = APIRouter(tags=["message links"], include_in_schema=True, route_class=StrictJSONRoute)

_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _invalid() -> HTMLResponse:
    return _page("Link not valid", "<p>This link is not valid. It may have been copied incompletely.</p>", 404)


@router.get("/u/{token}", response_class=HTMLResponse, summary="Unsubscribe: confirmation page")
def unsubscribe_page(token: str, ctx: Ctx) -> HTMLResponse:
    try:
        target = ctx.sf.messages.unsubscribe_target(token)
    except (ValidationError, NotFoundError):
        return _invalid()
    who = html.escape(target["address"])
    return _page("Unsubscribe", f"<p>Stop {html.escape(target['channel'])} marketing to <b>{who}</b>?</p>"
                 f'<form method="post"><button type="submit">Unsubscribe</button></form>')


@router.post("/u/{token}", response_class=HTMLResponse, summary="Unsubscribe now (also RFC 8058 one-click)")
def unsubscribe(token: str, ctx: Ctx) -> HTMLResponse:
    try:
        done = ctx.sf.messages.unsubscribe(token)
    except (ValidationError, NotFoundError):
        return _invalid()
    return _page("Unsubscribed", f"<p><b>{html.escape(done['address'])}</b> will get no more "
                 f"{html.escape(done['channel'])} marketing from us.</p>")


@router.get("/t/o/{token}", summary="Open-tracking pixel")
def open_pixel(token: str, ctx: Ctx) -> Response:
    with contextlib.suppress(ValidationError, NotFoundError):  # a pixel never shows an error
        ctx.sf.messages.record_open(token)
    return Response(_GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/t/c/{token}", summary="Tracked link: record the click, then redirect")
def click(token: str, ctx: Ctx) -> Response:
    try:
        url = ctx.sf.messages.record_click(token)
    except (ValidationError, NotFoundError):
        return _invalid()
    if not url.startswith(("http://", "https://")):
        return _invalid()
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

"""One-shot messages after a form post (post/redirect/get): kept in a short-lived cookie, so no
text from a URL is ever echoed into a page."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse

FLASH_COOKIE = "soc_flash"


def redirect(
    url: str, *, ok: str | None = None, error: str | None = None, detail: str = "", secure: bool = True
) -> RedirectResponse:
    """303 to ``url`` with a message: ``ok``/``error`` are msgids, ``detail`` a service message shown as is."""
    response = RedirectResponse(url, status_code=303)
    if ok or error:
        value = quote(json.dumps({"ok": ok, "error": error, "detail": detail[:400]}))
        response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, secure=secure, samesite="strict", path="/")
    return response


def take(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {k: value.get(k) if isinstance(value.get(k), str) else None for k in ("ok", "error", "detail")}

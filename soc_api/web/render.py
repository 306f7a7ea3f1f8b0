"""Rendering a page: the template context every page shares, security headers and cookies.

Pages set their own Content-Security-Policy (scripts and styles only from ``/static``, no inline
code, no nonce) so the app-wide default for the JSON API stays stricter. Every page response is
``no-store``: it may show alerts or personal data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from soc_api.deps import CSRF_COOKIE
from soc_api.services.principal import Principal
from soc_api.state import AppState
from soc_api.web import flash, nav, userprefs
from soc_api.web.i18n import LANGUAGES, Translator, pick_language
from soc_api.web.labels import label

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
TEMPLATES.env.autoescape = True
LANG_COOKIE = "lang"
_CSP_BASE = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Signed-in pages load /static/app.js (keyboard shortcuts); anonymous pages need no script at all.
PAGE_CSP = _CSP_BASE.replace("default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';")


def translator(request: Request, state: AppState) -> Translator:
    prefs = userprefs.of(request)
    lang = pick_language(
        request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), state.config.language,
        stored=prefs.locale, accept=request.headers.get("accept-language"),
    )  # fmt: skip
    return Translator(lang, prefs.zone or state.tz)


def csrf_for(request: Request, state: AppState) -> str:
    """The double-submit token: the browser's current one if it is ours, else a fresh one."""
    presented = request.cookies.get(CSRF_COOKIE)
    if presented and state.signer.csrf_valid(presented, presented):
        return presented
    return state.signer.csrf_token()


def url_with(request: Request, **changes: str | None) -> str:
    """The current URL with some query parameters changed (None removes one); keeps repeats."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    items += [(k, v) for k, v in changes.items() if v is not None]
    query = urlencode(items)
    return request.url.path + ("?" + query if query else "")


def render(
    request: Request,
    state: AppState,
    name: str,
    context: dict[str, Any],
    *,
    principal: Principal | None = None,
    active: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    t = translator(request, state)
    if principal is None:
        principal = getattr(request.state, "principal", None)
    csrf = csrf_for(request, state)
    base: dict[str, Any] = {
        "_": t.gettext,
        "t": t,
        "lang": t.lang,
        "languages": LANGUAGES,
        "label": lambda kind, code: t.gettext(label(kind, code)),
        "csrf_token": csrf,
        "tz": t.tz.key,
        "principal": principal,
        "nav": nav.entries_for(principal),
        "active": active,
        "url_with": lambda **kw: url_with(request, **kw),
        "flash": flash.take(request),
        "path": request.url.path,
    }
    response = TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    secure = state.config.security.cookie_secure
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, secure=secure, samesite="strict", path="/")
    if request.query_params.get("lang") == t.lang:
        remember_language(response, t.lang, state)
    if base["flash"] is not None or request.cookies.get(flash.FLASH_COOKIE):
        response.delete_cookie(flash.FLASH_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    harden(response, scripts=principal is not None)
    return response


def remember_language(response: Any, lang: str | None, state: AppState) -> None:
    """The language cookie: what the sign-in page shows this browser next time."""
    if lang in LANGUAGES:
        secure = state.config.security.cookie_secure
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, secure=secure, samesite="lax", path="/")


def harden(response: Any, *, scripts: bool = True) -> None:
    response.headers["Content-Security-Policy"] = PAGE_CSP if scripts else _CSP_BASE
    response.headers["Cache-Control"] = "no-store"

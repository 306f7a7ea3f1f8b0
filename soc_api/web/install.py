"""Mount the web interface on the app: static files, page routers, page error handlers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from soc_api.web.flash import redirect
from soc_api.web.guard import FormRejected, LoginRequired, PageForbidden
from soc_api.web.render import render

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    from soc_api.routers.pages import router

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        from soc_api.routers.pages import LANDING

        target = "/login" if exc.next_url == LANDING else f"/login?next={quote(exc.next_url, safe='/')}"
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
        return render(request, app.state.soc, "forbidden.html", {}, status_code=403)

    @app.exception_handler(FormRejected)
    async def _rejected(request: Request, exc: FormRejected) -> Response:
        return redirect(
            exc.back, error=exc.msgid, detail=exc.detail, secure=app.state.soc.config.security.cookie_secure
        )

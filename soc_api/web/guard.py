"""Who is looking at a page, and the checks a page or form makes (login, permission, CSRF).

A page without a session redirects to the login page (with the page to come back to); a signed-in
user without the permission gets a localised 403 page, not an API problem document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from soc_api.deps import SessionDep, check_csrf, client_ip, resolve_principal
from soc_api.problems import Problem
from soc_api.services.principal import Principal
from soc_api.web import userprefs


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__("login required")
        self.next_url = next_url


class PageForbidden(Exception):
    """The signed-in user may not open this page or do this action."""


class FormRejected(Exception):
    """A form post that failed a rule: shown back to the user as a flash message."""

    def __init__(self, msgid: str, back: str, detail: str = "") -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.back = back
        self.detail = detail


def safe_next(value: str | None) -> str:
    """Only same-site paths (never ``//host`` or a scheme) may be a post-login destination."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/alerts"
    return value


def page_principal(request: Request, session: SessionDep) -> Principal:
    try:
        principal = resolve_principal(request, session)
    except Problem:
        principal = None
    if principal is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    request.state.principal = principal
    userprefs.remember(request, session, principal)
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def allow(principal: Principal, check: Callable[[Principal], bool]) -> None:
    if not check(principal):
        raise PageForbidden()


def form_csrf(request: Request, principal: Principal, submitted: str | None) -> None:
    """Form posts carry the double-submit token in a hidden field."""
    check_csrf(request, principal, submitted or "")


def ip(request: Request) -> str | None:
    return client_ip(request)


__all__ = ["PagePrincipal", "Session", "allow", "form_csrf", "ip", "page_principal", "safe_next"]

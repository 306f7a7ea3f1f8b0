"""The prelude every form post shares: the caller's session, the app state, the signed-in user and
the CSRF check, as one dependency, so a handler starts with what it changes, not with plumbing.

A handler takes ``post: FormPost`` and gets the checked context; a refusal is a :class:`FormRejected`
(flash message on the page it came from), success is :meth:`PostContext.done` (post/redirect/get).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc_api.deps import SessionDep, StateDep
from soc_api.services.principal import Principal
from soc_api.state import AppState
from soc_api.web.flash import redirect
from soc_api.web.guard import FormRejected, PagePrincipal, allow, form_csrf, ip
from soc_api.web.i18n import N_

Csrf = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class PostContext:
    request: Request
    session: Session
    state: AppState
    principal: Principal

    @property
    def ip(self) -> str | None:
        return ip(self.request)

    def allow(self, check: Callable[[Principal], bool]) -> None:
        allow(self.principal, check)

    def done(self, back: str, ok: str | None = None) -> Response:
        """303 back to ``back`` with the ``ok`` msgid as a flash message."""
        return redirect(back, ok=ok, secure=self.state.config.security.cookie_secure)

    def run(self, back: str, change: Callable[[], object], refusals: tuple[type[Exception], ...]) -> None:
        """A service change; a refusal (one of ``refusals``, shown with its message) or a concurrent
        edit becomes a flash message on ``back`` and the request's transaction is rolled back."""
        try:
            change()
            self.session.flush()
        except StaleDataError:
            raise FormRejected(N_("Changed by someone else; reload and retry."), back) from None
        except ValidationError as exc:  # a form value the service's input model refuses
            raise FormRejected(N_("Check the values you entered."), back, str(exc.errors()[0]["msg"])) from None
        except refusals as exc:
            raise FormRejected(N_("The action was refused."), back, str(exc)[:300]) from None


@dataclass(frozen=True)
class Upload:
    name: str  # the file's base name as the browser sent it, shortened
    media: str  # the browser's content type ("" when it sent none)
    data: bytes


async def read_upload(file: UploadFile, limit: int, back: str, default_name: str, max_name: int = 255) -> Upload:
    """An uploaded file read up to ``limit`` bytes; a larger or empty one is refused as a flash message."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise FormRejected(N_("The file is too large."), back)
    if not data:
        raise FormRejected(N_("Choose a file to upload."), back)
    name = (file.filename or default_name).replace("\\", "/").rsplit("/", 1)[-1][:max_name] or default_name
    return Upload(name, file.content_type or "", data)


def post_context(
    request: Request, session: SessionDep, state: StateDep, principal: PagePrincipal, csrf_token: Csrf = ""
) -> PostContext:
    form_csrf(request, principal, csrf_token)
    return PostContext(request, session, state, principal)


FormPost = Annotated[PostContext, Depends(post_context)]

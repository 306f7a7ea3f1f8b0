"""Detector tuning: the anomaly detectors' effective settings for one site (built-in default or the
site's override), and a form per detector to change thresholds, the learning period or the on/off
switch for that site, or to go back to the defaults; every change needs a reason.

Changes go through the JSON API's handlers (``/api/v1/detectors``): the same validation against the
detector's parameter model, the same two audit records, the same site-scope rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from collector.anomaly.settings import DETECTOR_PARAMS
from soc_api.db.models import Site
from soc_api.deps import SessionDep, StateDep
from soc_api.problems import Problem
from soc_api.routers import detectors as api
from soc_api.services import detectors as svc
from soc_api.services.principal import ALERTS_READ, SUPPRESSIONS_MANAGE, Principal
from soc_api.web import nav
from soc_api.web.forms import FormPost
from soc_api.web.guard import FormRejected, PagePrincipal, allow
from soc_api.web.i18n import N_
from soc_api.web.render import render
from soc_common.ecs import parse_ts

router = APIRouter()
nav.register(
    nav.NavEntry("detectors", N_("Detectors"), "/admin/detectors", order=62, allowed=nav.can(SUPPRESSIONS_MANAGE))
)
FIELD_PREFIX = "p."
Reason = Annotated[str, Form(max_length=2000)]
HISTORY_SCAN = 5000  # newest override changes read to show each detector's last few for the site


@dataclass(frozen=True)
class ParameterRow:
    name: str
    kind: str  # JSON schema type: boolean, integer, number, array, string
    default: Any
    override: Any  # None when the site keeps the default
    doc: str

    @property
    def overridden(self) -> bool:
        return self.override is not None

    @property
    def effective(self) -> Any:
        return self.override if self.override is not None else self.default


def shown(value: Any) -> str:
    """A parameter value as typed in the form: lists comma-separated, the rest as JSON scalars."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def rows_of(detector: str, override: dict[str, Any]) -> list[ParameterRow]:
    return [
        ParameterRow(d.name, str(d.schema.get("type", "string")), d.default, override.get(d.name), d.doc)
        for d in svc.parameters(detector)
    ]


def parse_value(kind: str, text: str) -> Any:
    """A typed form value for the parameter model (which checks ranges and converts durations)."""
    if kind == "array":
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        return value if isinstance(value, list) else [v.strip() for v in text.split(",") if v.strip()]
    if kind == "boolean":
        return text.lower() in ("true", "1", "on", "yes")
    return text


def requested_params(detector: str, form: FormData) -> dict[str, Any]:
    """The parameters filled in; an empty field keeps the default."""
    kinds = {d.name: str(d.schema.get("type", "string")) for d in svc.parameters(detector)}
    out: dict[str, Any] = {}
    for key, raw in form.multi_items():
        if not key.startswith(FIELD_PREFIX) or not isinstance(raw, str):
            continue
        name, text = key[len(FIELD_PREFIX) :], raw.strip()
        if name in kinds and text and len(text) <= 2000:
            out[name] = parse_value(kinds[name], text)
    return out


def _sites(session: SessionDep, principal: Principal) -> list[Site]:
    return [s for s in session.scalars(select(Site).order_by(Site.code)) if principal.sees_site(s.code)]


async def form_fields(request: Request) -> FormData:
    return await request.form()  # parsed once per request (Starlette caches it)


@router.get("/admin/detectors")
def detectors(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: PagePrincipal,
    site: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    allow(principal, nav.can(ALERTS_READ))
    sites = _sites(session, principal)
    chosen = site if any(s.code == site for s in sites) else (sites[0].code if sites else "")
    with svc.open_state(state.config) as anomaly:
        overrides = anomaly.overrides().get(chosen, {}) if chosen else {}
        changes = [c for c in anomaly.override_audit(HISTORY_SCAN) if c["site"] == chosen]
    items = [
        {
            "name": name,
            "description": svc.description(name),
            "override": overrides.get(name),
            "enabled": bool(overrides.get(name, {}).get("enabled", svc.defaults(name).enabled)),
            "rows": rows_of(name, overrides.get(name, {})),
            "history": [{**c, "at": parse_ts(c["at"])} for c in changes if c["detector"] == name][:5],
        }
        for name in DETECTOR_PARAMS
    ]
    context = {"sites": sites, "site": chosen, "items": items, "shown": shown,
               "can_manage": principal.can(SUPPRESSIONS_MANAGE)}  # fmt: skip
    return render(request, state, "detectors.html", context, principal=principal, active="detectors")


def _back(site: str) -> str:
    return f"/admin/detectors?site={site}"


@router.post("/admin/detectors/{detector}/sites/{site}")
def tune(
    detector: str, site: str, post: FormPost, form: Annotated[FormData, Depends(form_fields)], reason: Reason = ""
) -> Response:
    """Set the site's override to the filled-in parameters (and the on/off switch)."""
    post.allow(nav.can(SUPPRESSIONS_MANAGE))
    back = _back(site[:64])
    params = requested_params(detector, form) if svc.known(detector) else {}
    try:
        body = api.OverrideIn(params=params, reason=reason.strip())
    except ValidationError:
        raise FormRejected(N_("Give a reason (at least 5 characters)."), back) from None
    try:
        api.put_override(detector, site, body, post.request, Response(), post.session, post.state, post.principal)
    except Problem as exc:
        raise FormRejected(N_("The action was refused."), back, exc.detail) from None
    return post.done(back, N_("Detector settings saved."))


@router.post("/admin/detectors/{detector}/sites/{site}/reset")
def reset(detector: str, site: str, post: FormPost, reason: Reason = "") -> Response:
    """Drop the site's override: the detector runs with the defaults again."""
    post.allow(nav.can(SUPPRESSIONS_MANAGE))
    back = _back(site[:64])
    if len(reason.strip()) < 5:
        raise FormRejected(N_("Give a reason (at least 5 characters)."), back)
    try:
        api.delete_override(detector, site, reason.strip(), post.request, post.session, post.state, post.principal)
    except Problem as exc:
        raise FormRejected(N_("The action was refused."), back, exc.detail) from None
    return post.done(back, N_("Detector back to its defaults."))

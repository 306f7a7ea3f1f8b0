"""``/api/v1/detectors``: see, tune or switch off the anomaly detectors per site.

A change is written to the collector's anomaly state database, which the engine re-reads every
cycle, so it takes effect at the next cycle without a restart. Every change needs a reason and is
recorded twice in the same request: in the anomaly audit table (next to the setting it explains)
and in the API's hash-chained audit trail (appended first, so a failed write leaves neither).
Changing a site needs ``suppressions:manage`` (admins, officers) and that site in the caller's
scope; overrides and history of other sites are not shown.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from collector.anomaly.settings import DETECTOR_PARAMS
from collector.anomaly.state import AnomalyState
from soc_api.db.models import Site
from soc_api.deps import SessionDep, StateDep, client_ip, require
from soc_api.problems import Problem
from soc_api.services import audit
from soc_api.services import detectors as svc
from soc_api.services.principal import ALERTS_READ, SUPPRESSIONS_MANAGE, Principal

router = APIRouter(prefix="/api/v1/detectors", tags=["detectors"])
Reader = Annotated[Principal, Depends(require(ALERTS_READ))]
# Tuning a detector silences alerts, exactly like a suppression: the same people may do it.
Manager = Annotated[Principal, Depends(require(SUPPRESSIONS_MANAGE))]
DetectorName = Annotated[str, Path(max_length=64)]
SiteCode = Annotated[str, Path(max_length=64)]
Reason = Annotated[str, Query(min_length=5, max_length=2000)]
PROBLEMS: dict[int | str, dict[str, object]] = {
    401: {"description": "Not authenticated"},
    403: {"description": "Missing permission or site outside the caller's scope"},
    404: {"description": "No such detector, site or override"},
    412: {"description": "Stale If-Match"},
    422: {"description": "Invalid input (unknown parameter, value out of range)"},
    503: {"description": "Anomaly state database busy"},
}


class ParameterOut(BaseModel):
    name: str
    default: Any
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    doc: str

    model_config = ConfigDict(populate_by_name=True)


class OverrideOut(BaseModel):
    detector: str
    site: str
    params: dict[str, Any]
    enabled: bool  # whether the detector runs for this site with the override applied
    etag: str


class DetectorOut(BaseModel):
    name: str
    description: str
    enabled: bool
    learning_days: float
    parameters: list[ParameterOut]
    sites: dict[str, OverrideOut]


class DetectorList(BaseModel):
    items: list[DetectorOut]


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict, max_length=50)
    enabled: bool | None = None
    reason: str = Field(min_length=5, max_length=2000)


class ChangeOut(BaseModel):
    site: str
    params: dict[str, Any]
    previous: dict[str, Any] | None
    actor: str
    reason: str
    at: str


class History(BaseModel):
    detector: str
    items: list[ChangeOut]


def _override_out(detector: str, site: str, params: dict[str, Any]) -> OverrideOut:
    enabled = bool(params.get("enabled", svc.defaults(detector).enabled))
    return OverrideOut(detector=detector, site=site, params=params, enabled=enabled, etag=svc.etag(params) or "")


def _detector_out(name: str, overrides: dict[str, dict[str, dict[str, Any]]], p: Principal) -> DetectorOut:
    base = svc.defaults(name)
    return DetectorOut(
        name=name, description=svc.description(name), enabled=base.enabled, learning_days=base.learning_days,
        parameters=[ParameterOut(name=d.name, default=d.default, schema=d.schema, doc=d.doc)
                    for d in svc.parameters(name)],
        sites={site: _override_out(name, site, per[name]) for site, per in sorted(overrides.items())
               if name in per and p.sees_site(site)},
    )  # fmt: skip


def _detector(name: str) -> str:
    if not svc.known(name):
        raise Problem(404, f"no detector {name!r}", kind="unknown-detector", known=sorted(DETECTOR_PARAMS))
    return name


def _site(session: SessionDep, p: Principal, site: str) -> str:
    if not p.sees_site(site):
        raise Problem(403, f"site {site!r} is outside your scope", kind="forbidden")
    if session.get(Site, site) is None:
        raise Problem(404, f"no site {site!r}", kind="not-found")
    return site


def _check_if_match(request: Request, current: dict[str, Any] | None) -> None:
    value = request.headers.get("if-match")
    if value is None:
        return
    tag = svc.etag(current)
    value = value.strip()[:100]
    if tag is None or value not in ("*", tag):
        raise Problem(412, "changed since you read it; reload and retry", kind="stale", etag=tag)


def _write(state: AnomalyState, site: str, detector: str, params: dict[str, Any], actor: str, reason: str) -> None:
    try:
        state.set_override(site, detector, params, actor, reason)
    except sqlite3.Error as exc:
        raise Problem(503, f"anomaly state database unavailable: {type(exc).__name__}", kind="unavailable") from None


@router.get("", response_model=DetectorList, summary="Detectors, their parameters and per-site overrides",
            responses=PROBLEMS, response_model_by_alias=True)  # fmt: skip
def list_detectors(app: StateDep, principal: Reader) -> DetectorList:
    with svc.open_state(app.config) as state:
        overrides = state.overrides()
    return DetectorList(items=[_detector_out(name, overrides, principal) for name in DETECTOR_PARAMS])


@router.put("/{detector}/sites/{site}", response_model=OverrideOut, summary="Tune or switch off a detector for a site",
            responses=PROBLEMS)  # fmt: skip
def put_override(
    detector: DetectorName, site: SiteCode, body: OverrideIn, request: Request, response: Response,
    session: SessionDep, app: StateDep, principal: Manager,
) -> OverrideOut:  # fmt: skip
    _detector(detector)
    _site(session, principal, site)
    requested = dict(body.params)
    if body.enabled is not None:
        if "enabled" in requested and requested["enabled"] != body.enabled:
            raise Problem(422, "'enabled' given twice with different values", kind="validation-error")
        requested["enabled"] = body.enabled
    if not requested:
        raise Problem(422, "nothing to override; DELETE removes an override", kind="validation-error")
    try:
        params = svc.validate_override(detector, requested)
    except svc.OverrideInvalid as exc:
        raise Problem(422, str(exc), kind="validation-error", errors=exc.errors) from None
    with svc.open_state(app.config) as state:
        current = state.overrides().get(site, {}).get(detector)
        _check_if_match(request, current)
        audit.append(session, actor=principal.name, action="detector.override.set", object_type="detector_override",
                     object_id=f"{detector}@{site}", before={"params": current} if current is not None else None,
                     after={"params": params, "reason": body.reason}, source_ip=client_ip(request))  # fmt: skip
        _write(state, site, detector, params, principal.name, body.reason)
    out = _override_out(detector, site, params)
    response.headers["ETag"] = out.etag
    return out


@router.delete("/{detector}/sites/{site}", status_code=204, summary="Back to the defaults for a site",
               responses=PROBLEMS)  # fmt: skip
def delete_override(
    detector: DetectorName, site: SiteCode, reason: Reason, request: Request, session: SessionDep, app: StateDep,
    principal: Manager,
) -> Response:  # fmt: skip
    _detector(detector)
    _site(session, principal, site)
    with svc.open_state(app.config) as state:
        current = state.overrides().get(site, {}).get(detector)
        if current is None:
            raise Problem(404, f"no override of {detector} for {site}", kind="not-found")
        _check_if_match(request, current)
        audit.append(session, actor=principal.name, action="detector.override.delete", object_type="detector_override",
                     object_id=f"{detector}@{site}", before={"params": current}, after={"reason": reason},
                     source_ip=client_ip(request))  # fmt: skip
        _write(state, site, detector, {}, principal.name, reason)
    return Response(status_code=204)


@router.get("/{detector}/history", response_model=History, summary="Who changed a detector, when and why",
            responses=PROBLEMS)  # fmt: skip
def detector_history(
    detector: DetectorName, app: StateDep, principal: Reader,
    site: Annotated[str | None, Query(max_length=64)] = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> History:  # fmt: skip
    _detector(detector)
    with svc.open_state(app.config) as state:
        changes = svc.override_changes(state, detector, limit)
    items = [ChangeOut(**c) for c in changes if principal.sees_site(c["site"]) and (site is None or c["site"] == site)][
        :limit
    ]
    return History(detector=detector, items=items)

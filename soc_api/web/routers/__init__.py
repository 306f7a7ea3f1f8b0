"""Page routers, one module per area. A new feature adds its module here and registers its
navigation entries (:mod:`soc_api.web.nav`) when imported."""

from __future__ import annotations

from fastapi import APIRouter

from soc_api.web.routers.admin import router as admin_router
from soc_api.web.routers.agents import router as agents_router
from soc_api.web.routers.audit_pages import router as audit_router
from soc_api.web.routers.detector_pages import router as detector_router
from soc_api.web.routers.drills import router as drills_router
from soc_api.web.routers.handover_pages import router as handover_router
from soc_api.web.routers.hunt import router as hunt_router
from soc_api.web.routers.incidents import router as incidents_router
from soc_api.web.routers.kpi_pages import router as kpi_router
from soc_api.web.routers.overview import router as overview_router
from soc_api.web.routers.suppression_pages import router as suppression_router
from soc_api.web.routers.systems import router as systems_router
from soc_api.web.routers.triage import router as triage_router

AREA_ROUTERS: list[APIRouter] = [
    overview_router,
    triage_router,
    incidents_router,
    drills_router,
    systems_router,
    hunt_router,
    agents_router,
    kpi_router,
    audit_router,
    suppression_router,
    detector_router,
    handover_router,
    admin_router,
]

"""The FastAPI application: ``create_app(config)``.

Start-up migrates the database to head, so a fresh install and an upgrade are the same step.
Every response carries strict security headers; request bodies above the configured limit are
refused before they are read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response

from soc_api import problems, web
from soc_api.agents import routers as agents_routes
from soc_api.assessments import routers as assessments_routes
from soc_api.config import ApiConfig, ensure_session_secret
from soc_api.db.migrate import upgrade
from soc_api.db.session import make_engine, make_session_factory
from soc_api.drills import routers as drills_routes
from soc_api.handover import routers as handover_routes
from soc_api.handover.taxii import build_taxii_router
from soc_api.incidents import routers as incidents_routes
from soc_api.kpi import routers as kpi_routes
from soc_api.notifications import routers as notifications_routes
from soc_api.reminders import routers as reminders_routes
from soc_api.reports import routers as reports_routes
from soc_api.routers import alerts, audit, auth, detectors, health, metrics, suppressions, users
from soc_api.services.auth import SecretBox
from soc_api.services.tokens import TokenSigner
from soc_api.state import AppState
from soc_api.systems import routers as systems_routes

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from collector.store.base import EventStore

log = logging.getLogger(__name__)
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _open_store(config: ApiConfig) -> EventStore | None:
    """The configured event store; if it cannot be opened the API still starts, without raw events."""
    settings = config.store
    if settings is None:
        return None
    from collector.store.factory import open_store

    try:
        store: EventStore = open_store(settings, writer=False)
    except Exception:
        log.warning("event store %s unavailable: alert detail will show no raw events", settings.kind, exc_info=True)
        return None
    return store


def build_state(config: ApiConfig, *, migrate: bool = True) -> AppState:
    secret = ensure_session_secret(config).get_secret_value()
    if migrate:
        upgrade(config.database.url)
    engine = make_engine(config.database.url, echo=config.database.echo, pool_size=config.database.pool_size)
    return AppState(
        config=config,
        engine=engine,
        sessions=make_session_factory(engine),
        signer=TokenSigner(secret),
        box=SecretBox(secret),
        tz=ZoneInfo(config.timezone),
        store=_open_store(config),
    )


def start_background_jobs(state: AppState) -> list[BackgroundScheduler]:
    """The API's scheduled work: notifications, deadline reminders and drill marking, hand-over."""
    from soc_api.notifications.scheduler import start_notification_scheduler
    from soc_api.reminders.scheduler import start_scheduler as start_reminders

    schedulers: list[BackgroundScheduler] = []
    if state.config.notifications.enabled:
        schedulers.append(start_notification_scheduler(state))
    reminders = start_reminders(state)
    if reminders is not None:
        schedulers.append(reminders)
    handover = state.config.handover
    if handover.enabled and handover.endpoint and handover.receiver_keys is not None:  # validated together
        from soc_api.handover.delivery import Deliverer, HandoverJobs, build_scheduler
        from soc_api.handover.keys import PublicKeySet

        keys = PublicKeySet.load(handover.receiver_keys)
        jobs = HandoverJobs(handover, state.sessions, Deliverer(handover, state.sessions, keys))
        scheduler = build_scheduler(jobs)
        scheduler.start()
        schedulers.append(scheduler)
    return schedulers


def create_app(config: ApiConfig, *, migrate: bool = True) -> FastAPI:
    state = build_state(config, migrate=migrate)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        schedulers = start_background_jobs(state)
        yield
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)
        if state.store is not None:
            state.store.close()
        state.engine.dispose()

    app = FastAPI(
        title="SOC API",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema stays available
        redoc_url=None,
    )
    app.state.soc = state
    problems.install(app)
    _install_middleware(app, config)
    for router in (health.router, auth.router, alerts.router, audit.router, systems_routes.router):
        app.include_router(router)
    app.state.handover = config.handover
    for router in (
        incidents_routes.router,
        users.router,
        suppressions.router,
        detectors.router,
        notifications_routes.router,
        assessments_routes.router,
        drills_routes.router,
        kpi_routes.router,
        reports_routes.router,
        reminders_routes.router,
        handover_routes.router,
        agents_routes.router,
        build_taxii_router(title=config.handover.taxii_collection_title),
    ):
        app.include_router(router)
    web.install(app)  # pages, /static
    metrics.install(app, state.sessions)  # outermost middleware: times every request, refusals included
    return app


def _install_middleware(app: FastAPI, config: ApiConfig) -> None:
    limit = config.security.max_body_bytes
    upload_limit = max(limit, config.systems.max_document_bytes)
    hsts = config.listen.tls

    def limit_for(request: Request) -> int:
        """Document uploads (dossier parts) may be larger than ordinary API bodies."""
        is_upload = request.method in ("PUT", "POST") and "/documents/" in request.url.path  # API or page form
        return upload_limit if is_upload else limit

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        allowed = limit_for(request)
        if length is not None and (not length.isdigit() or int(length) > allowed):
            return problems.problem_response(request, 413, f"request body above {allowed} bytes", "too-large")
        if length is None and request.headers.get("transfer-encoding", "").lower() == "chunked":
            return problems.problem_response(request, 411, "send a Content-Length", "length-required")
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.url.path.startswith("/api/") or request.url.path in ("/login", "/alerts"):
            response.headers["Cache-Control"] = "no-store"
        if hsts:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response

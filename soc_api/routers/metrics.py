"""``GET /metrics``: the SOC API in Prometheus text format, for the same scraper as the collector.

Two kinds of series: request counts and latencies per route template (the template, not the raw
path, so ids in URLs cannot blow up the label set), recorded by a middleware; and the work waiting
for people and for the central centre (alerts by status, open incidents, hand-over packages by
status), counted from the database at scrape time so they are never stale. Reading them needs the
``metrics:read`` permission: an API key with that scope for the scraper, or an admin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.models import AlertRow, Incident
from soc_api.deps import app_state, require
from soc_api.handover.models import OutboxEntry
from soc_api.services.principal import METRICS_READ, Principal

log = logging.getLogger(__name__)
router = APIRouter()
CLOSED_INCIDENT_STATUSES = ("closed",)


class _Backlog(Collector):
    """Counts from the SOC database, read when Prometheus scrapes."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterable[Metric]:
        alerts = GaugeMetricFamily("soc_api_alerts", "Alerts in the triage queue, by status", labels=["status"])
        incidents = GaugeMetricFamily("soc_api_incidents_open", "Incidents not closed, by class", labels=["severity"])
        outbox = GaugeMetricFamily("soc_api_handover_packages", "Hand-over packages, by status", labels=["status"])
        up = GaugeMetricFamily("soc_api_database_up", "1 when the last scrape could read the database")
        try:
            with self.sessions() as session:
                for status, count in session.execute(select(AlertRow.status, func.count()).group_by(AlertRow.status)):
                    alerts.add_metric([status], count)
                open_incidents = (
                    select(Incident.severity, func.count())
                    .where(Incident.status.not_in(CLOSED_INCIDENT_STATUSES))
                    .group_by(Incident.severity)
                )
                for severity, count in session.execute(open_incidents):
                    incidents.add_metric([severity], count)
                by_status = select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status)
                for status, count in session.execute(by_status):
                    outbox.add_metric([status], count)
            up.add_metric([], 1)
        except Exception:  # a scrape reports the outage instead of failing
            log.warning("metrics: the SOC database could not be read", exc_info=True)
            up.add_metric([], 0)
        yield from (alerts, incidents, outbox, up)


class ApiMetrics:
    """The API's registry: request series plus the database backlog."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "soc_api_requests", "HTTP requests, by route template and status", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "soc_api_request_seconds", "Time to answer, by route template", ["route"], registry=self.registry
        )
        self.registry.register(_Backlog(sessions))

    def observe(self, request: Request, status: int, seconds: float) -> None:
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        self.requests.labels(request.method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


def install(app: FastAPI, sessions: sessionmaker[Session]) -> ApiMetrics:
    """Add the request-recording middleware and ``/metrics``; the metrics live on ``app.state``."""
    metrics = ApiMetrics(sessions)
    app.state.metrics = metrics

    @app.middleware("http")
    async def _record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        metrics.observe(request, response.status_code, time.perf_counter() - started)
        return response

    app.include_router(router)
    return metrics


@router.get("/metrics", tags=["health"], response_class=Response)
def metrics_text(request: Request, _: Annotated[Principal, Depends(require(METRICS_READ))]) -> Response:
    metrics: ApiMetrics = request.app.state.metrics
    app_state(request)  # the app is up: the state exists
    return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4; charset=utf-8")

"""Fill hand-over records from the SOC database tables that exist (alerts, incidents, dossiers).

Drills have no table yet: :class:`~soc_api.handover.records.DrillRecord` comes from the caller.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api.db.models import AlertRow, Incident, IncidentAlert
from soc_api.handover.records import (
    AlertBrief,
    AlertSummary,
    Count,
    DossierStatus,
    IncidentReport,
    Indicator,
    KpiSnapshot,
    Period,
)
from soc_common.ecs import get, utc_now

SERIOUS_SEVERITIES = frozenset({"serious"})  # the incident reporting classes are "normal" and "serious"
TOP_N = 20
_HASH_TYPES = {32: "md5", 40: "sha1", 64: "sha256"}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
# ECS fields whose values are observables worth sharing.
_DOMAIN_FIELDS = ("destination.domain", "dns.question.name", "url.domain")
_URL_FIELDS = ("url.full", "url.original")
_HASH_FIELDS = (
    "file.hash.md5",
    "file.hash.sha1",
    "file.hash.sha256",
    "process.hash.md5",
    "process.hash.sha1",
    "process.hash.sha256",
)


class NotFound(LookupError):
    pass


def _ip_indicator(value: str | None) -> tuple[str, str] | None:
    """Public addresses only: a private or reserved address means nothing to the centre."""
    if not value:
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if not ip.is_global:
        return None
    return ("ipv4" if ip.version == 4 else "ipv6", str(ip))


def _observables(alert: AlertRow) -> Iterator[tuple[str, str]]:
    for ip in (alert.source_ip, alert.destination_ip):
        found = _ip_indicator(ip)
        if found:
            yield found
    for event in alert.events or []:
        if not isinstance(event, dict):
            continue
        for path in ("source.ip", "destination.ip"):
            found = _ip_indicator(get(event, path))
            if found:
                yield found
        for path in _DOMAIN_FIELDS:
            value = get(event, path)
            if isinstance(value, str) and _DOMAIN.match(value.rstrip(".")):
                yield ("domain", value.rstrip(".").lower())
        for path in _URL_FIELDS:
            value = get(event, path)
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                yield ("url", value)
        for path in _HASH_FIELDS:
            value = get(event, path)
            if isinstance(value, str) and _HEX.match(value) and len(value) in _HASH_TYPES:
                yield (_HASH_TYPES[len(value)], value.lower())


def indicators_from_alerts(alerts: Iterable[AlertRow]) -> list[Indicator]:
    """Observables in the alerts, each with how many alerts saw it and when first/last."""
    seen: dict[tuple[str, str], list[Any]] = {}
    for alert in alerts:
        for key in set(_observables(alert)):
            slot = seen.setdefault(key, [0, alert.timestamp, alert.timestamp])
            slot[0] += 1
            slot[1] = min(slot[1], alert.timestamp)
            slot[2] = max(slot[2], alert.last_seen or alert.timestamp)
    return [
        Indicator(type=k[0], value=k[1], count=v[0], first_seen=v[1], last_seen=v[2])  # type: ignore[arg-type]
        for k, v in sorted(seen.items())
    ]


def _brief(alert: AlertRow) -> AlertBrief:
    return AlertBrief(
        id=alert.id,
        rule_id=alert.rule_id,
        rule_title=alert.rule_title,
        severity=alert.severity,  # type: ignore[arg-type]
        timestamp=alert.timestamp,
        host_name=alert.host_name,
        user_name=alert.user_name,
        source_ip=alert.source_ip,
        destination_ip=alert.destination_ip,
        techniques=list(alert.techniques or []),
    )


def incident_report(
    session: Session,
    incident_id: int,
    *,
    kind: str = "initial",
    description: str = "",
    measures: list[str] | None = None,
    now: datetime | None = None,
) -> IncidentReport:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    alerts = list(
        session.scalars(
            select(AlertRow)
            .join(IncidentAlert, IncidentAlert.alert_id == AlertRow.id)
            .where(IncidentAlert.incident_id == incident_id)
            .order_by(AlertRow.timestamp)
        )
    )
    detected = min([a.timestamp for a in alerts], default=incident.created_at)
    return IncidentReport(
        incident_id=str(incident.id),
        report_kind=kind,  # type: ignore[arg-type]
        title=incident.title,
        category=incident.category,
        severity=incident.severity,  # type: ignore[arg-type]
        status=incident.status,
        serious=incident.severity in SERIOUS_SEVERITIES,
        detected_at=detected,
        reported_at=now or utc_now(),
        description=description or incident.title,
        affected_systems=sorted({a.system_id for a in alerts if a.system_id}),
        measures=measures or [],
        alerts=[_brief(a) for a in alerts],
        indicators=indicators_from_alerts(alerts),
    )


def _alerts_in(session: Session, period: Period, site: str | None) -> list[AlertRow]:
    stmt = select(AlertRow).where(AlertRow.timestamp >= period.start, AlertRow.timestamp < period.end)
    if site is not None:
        stmt = stmt.where(AlertRow.site == site)
    return list(session.scalars(stmt.where(AlertRow.drill.is_(False))))


def _top(counter: Counter[str], labels: dict[str, str] | None = None) -> list[Count]:
    labels = labels or {}
    return [Count(key=k, label=labels.get(k, ""), count=n) for k, n in counter.most_common(TOP_N)]


def alert_summary(session: Session, period: Period, site: str | None = None) -> AlertSummary:
    """Statistics and observables of the period's alerts (drill alerts excluded)."""
    alerts = _alerts_in(session, period, site)
    rules = Counter(a.rule_id for a in alerts)
    titles = {a.rule_id: a.rule_title for a in alerts}
    return AlertSummary(
        period=period,
        total=len(alerts),
        by_severity=dict(Counter(a.severity for a in alerts)),
        by_rule=_top(rules, titles),
        by_technique=_top(Counter(t for a in alerts for t in (a.techniques or []))),
        top_hosts=_top(Counter(a.host_name for a in alerts if a.host_name)),
        indicators=indicators_from_alerts(alerts),
    )


def _mean_seconds(pairs: Iterable[tuple[datetime, datetime | None]]) -> float | None:
    spans = [(end - start).total_seconds() for start, end in pairs if end is not None and end >= start]
    return round(sum(spans) / len(spans), 3) if spans else None


def kpi_snapshot(session: Session, period: Period, site: str | None = None) -> KpiSnapshot:
    alerts = _alerts_in(session, period, site)
    closed = [a for a in alerts if a.close_reason is not None]
    in_period = (Incident.created_at >= period.start) & (Incident.created_at < period.end)
    opened = session.scalar(select(func.count()).select_from(Incident).where(in_period)) or 0
    closed_incidents = (
        session.scalar(select(func.count()).select_from(Incident).where(in_period, Incident.status == "closed")) or 0
    )
    serious = (
        session.scalar(
            select(func.count()).select_from(Incident).where(in_period, Incident.severity.in_(SERIOUS_SEVERITIES))
        )
        or 0
    )
    return KpiSnapshot(
        period=period,
        alerts_total=len(alerts),
        alerts_by_severity=dict(Counter(a.severity for a in alerts)),
        incidents_opened=int(opened),
        incidents_closed=int(closed_incidents),
        serious_incidents=int(serious),
        mean_time_to_acknowledge_s=_mean_seconds((a.detected_at, a.acknowledged_at) for a in alerts),
        mean_time_to_close_s=_mean_seconds((a.detected_at, a.closed_at) for a in alerts),
        false_positive_rate=(
            round(sum(1 for a in closed if a.close_reason == "false_positive") / len(closed), 4) if closed else None
        ),
    )


def dossier_status(session: Session, dossier_id: int) -> DossierStatus:
    """From the dossiers/information_systems tables of :mod:`soc_api.systems`."""
    from soc_api.systems.models import Dossier, InformationSystem

    dossier = session.get(Dossier, dossier_id)
    if dossier is None:
        raise NotFound(f"dossier {dossier_id} not found")
    system = session.get(InformationSystem, dossier.system_id)
    return DossierStatus(
        dossier_id=str(dossier.id),
        system_id=dossier.system_id,
        system_name=system.name if system else dossier.system_id,
        status=dossier.status,
        proposed_level=dossier.proposed_level,
        approved_level=dossier.approved_level,
        decision_no=dossier.decision_no,
        decision_date=dossier.decision_date,
        submitted_at=dossier.submitted_at,
        approved_at=dossier.approved_at,
        updated_at=dossier.updated_at,
    )


def unreported_incidents(session: Session, severities: Iterable[str], subjects: set[str]) -> list[int]:
    """Incidents of the given severities with no initial report queued yet (``subjects`` = taken)."""
    ids = session.scalars(select(Incident.id).where(Incident.severity.in_(list(severities))).order_by(Incident.id))
    return [i for i in ids if f"incident:{i}" not in subjects]

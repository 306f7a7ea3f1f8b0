"""STIX 2.1 objects from hand-over records: the reporting site's identity, incidents, indicators
and sightings, with deterministic UUIDv5 ids so a re-export names the same objects.

The STIX 2.1 ``incident`` core object is minimal; our fields travel as ``x_soc_*`` custom
properties. Indicator patterns come from the observable type (ipv4-addr, domain-name, url, file
hashes). Timestamps have millisecond precision, as the specification requires.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from soc_api.handover.records import AlertSummary, IncidentReport, Indicator

SPEC = "2.1"
# Fixed namespace of this platform's STIX ids: uuid5(NAMESPACE_URL, "urn:soc-handover:stix").
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:soc-handover:stix")

_PATTERN_PATHS = {
    "ipv4": "ipv4-addr:value",
    "ipv6": "ipv6-addr:value",
    "domain": "domain-name:value",
    "url": "url:value",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
}


def stix_time(ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def stix_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join((kind, *parts)))}"


def identity(site: str, name: str, created: datetime) -> dict[str, Any]:
    """The reporting site (a provincial Party office) as a STIX identity."""
    ts = stix_time(created)
    return {
        "type": "identity",
        "spec_version": SPEC,
        "id": stix_id("identity", site),
        "created": ts,
        "modified": ts,
        "name": name or site,
        "identity_class": "organization",
        "sectors": ["government-regional"],
        "x_soc_site": site,
    }


def pattern(indicator: Indicator) -> str:
    value = indicator.value.replace("\\", "\\\\").replace("'", "\\'")
    return f"[{_PATTERN_PATHS[indicator.type]} = '{value}']"


def indicator_object(site: str, indicator: Indicator, identity_id: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": SPEC,
        "id": stix_id("indicator", site, indicator.type, indicator.value),
        "created": stix_time(indicator.first_seen),
        "modified": stix_time(indicator.last_seen),
        "created_by_ref": identity_id,
        "name": f"{indicator.type} {indicator.value}",
        "indicator_types": ["anomalous-activity"],
        "pattern": pattern(indicator),
        "pattern_type": "stix",
        "valid_from": stix_time(indicator.first_seen),
    }


def sighting_object(site: str, indicator: Indicator, identity_id: str, scope: str) -> dict[str, Any]:
    """How often ``indicator`` was seen at the site within ``scope`` (a period or an incident)."""
    indicator_id = stix_id("indicator", site, indicator.type, indicator.value)
    return {
        "type": "sighting",
        "spec_version": SPEC,
        "id": stix_id("sighting", site, scope, indicator.type, indicator.value),
        "created": stix_time(indicator.first_seen),
        "modified": stix_time(indicator.last_seen),
        "created_by_ref": identity_id,
        "sighting_of_ref": indicator_id,
        "where_sighted_refs": [identity_id],
        "count": indicator.count,
        "first_seen": stix_time(indicator.first_seen),
        "last_seen": stix_time(indicator.last_seen),
    }


def _indicator_objects(
    site: str, indicators: Iterable[Indicator], identity_id: str, scope: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ind in indicators:
        out.append(indicator_object(site, ind, identity_id))
        out.append(sighting_object(site, ind, identity_id, scope))
    return out


def incident_objects(report: IncidentReport, site: str, site_name: str) -> list[dict[str, Any]]:
    """Identity, incident, its indicators and sightings, and incident->indicator relationships."""
    ident = identity(site, site_name, report.detected_at)
    incident_id = stix_id("incident", site, report.incident_id)
    incident = {
        "type": "incident",
        "spec_version": SPEC,
        "id": incident_id,
        "created": stix_time(report.detected_at),
        "modified": stix_time(max(report.reported_at, report.detected_at)),
        "created_by_ref": ident["id"],
        "name": report.title,
        "description": report.description or report.title,
        "x_soc_incident_id": report.incident_id,
        "x_soc_report_kind": report.report_kind,
        "x_soc_category": report.category,
        "x_soc_severity": report.severity,
        "x_soc_serious": report.serious,
        "x_soc_status": report.status,
        "x_soc_detected_at": stix_time(report.detected_at),
        "x_soc_affected_systems": list(report.affected_systems),
        "x_soc_measures": list(report.measures),
        "x_soc_alert_count": len(report.alerts),
        "x_soc_techniques": sorted({t for a in report.alerts for t in a.techniques}),
    }
    objects = [
        ident,
        incident,
        *_indicator_objects(site, report.indicators, ident["id"], f"incident:{report.incident_id}"),
    ]
    for ind in report.indicators:
        target = stix_id("indicator", site, ind.type, ind.value)
        objects.append(
            {
                "type": "relationship",
                "spec_version": SPEC,
                "id": stix_id("relationship", incident_id, target),
                "created": incident["created"],
                "modified": incident["created"],
                "created_by_ref": ident["id"],
                "relationship_type": "related-to",
                "source_ref": incident_id,
                "target_ref": target,
            }
        )
    return objects


def summary_objects(summary: AlertSummary, site: str, site_name: str) -> list[dict[str, Any]]:
    """Identity, the period's indicators and one sighting per indicator for the period."""
    ident = identity(site, site_name, summary.period.start)
    scope = f"period:{stix_time(summary.period.start)}/{stix_time(summary.period.end)}"
    return [ident, *_indicator_objects(site, summary.indicators, ident["id"], scope)]


def bundle(objects: list[dict[str, Any]], *, key: str) -> dict[str, Any]:
    """A bundle whose id derives from ``key`` (e.g. the package id), objects de-duplicated by id+modified."""
    seen: set[tuple[str, str]] = set()
    unique: list[dict[str, Any]] = []
    for obj in objects:
        marker = (obj["id"], obj.get("modified", ""))
        if marker not in seen:
            seen.add(marker)
            unique.append(obj)
    return {"type": "bundle", "id": stix_id("bundle", key), "objects": unique}

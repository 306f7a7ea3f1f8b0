"""Exporter plug-ins: each turns a signed package into one target format.

Like pySigma backends, exporters are looked up by name in a registry, so a future official
format of the central centre is one new class plus ``register()``, without touching builders,
the outbox or delivery. Built in: ``soc-handover`` (the canonical signed JSON) and ``stix-2.1``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Protocol

from soc_api.handover import records, stix
from soc_api.handover.jcs import canonicalize


class Exporter(Protocol):
    name: ClassVar[str]
    media_type: ClassVar[str]
    suffix: ClassVar[str]

    def supports(self, package_type: str) -> bool: ...

    def export(self, document: dict[str, Any]) -> bytes: ...


class ExporterError(Exception):
    """Unknown exporter, or a package type the exporter cannot express."""


_REGISTRY: dict[str, Exporter] = {}


def register(exporter: Exporter) -> None:
    _REGISTRY[exporter.name] = exporter


def get(name: str) -> Exporter:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ExporterError(f"unknown exporter {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


class HandoverJsonExporter:
    """The package itself in RFC 8785 canonical form: what is signed, hashed and delivered."""

    name: ClassVar[str] = "soc-handover"
    media_type: ClassVar[str] = "application/vnd.soc-handover+json;version=1.0"
    suffix: ClassVar[str] = ".json"

    def supports(self, package_type: str) -> bool:
        return True

    def export(self, document: dict[str, Any]) -> bytes:
        return canonicalize(document)


class StixExporter:
    """A STIX 2.1 bundle for the package types that have a STIX form (incidents, alert summaries)."""

    name: ClassVar[str] = "stix-2.1"
    media_type: ClassVar[str] = "application/stix+json;version=2.1"
    suffix: ClassVar[str] = ".stix.json"
    TYPES: ClassVar[frozenset[str]] = frozenset({"incident_report", "alert_summary"})

    def __init__(self, site_names: dict[str, str] | None = None) -> None:
        self.site_names = site_names or {}

    def supports(self, package_type: str) -> bool:
        return package_type in self.TYPES

    def objects(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        site = str(document["site"])
        name = self.site_names.get(site, site)
        kind = document["type"]
        if kind == "incident_report":
            return stix.incident_objects(records.IncidentReport.model_validate(document["payload"]), site, name)
        if kind == "alert_summary":
            return stix.summary_objects(records.AlertSummary.model_validate(document["payload"]), site, name)
        raise ExporterError(f"{kind} packages have no STIX form")

    def export(self, document: dict[str, Any]) -> bytes:
        bundle = stix.bundle(self.objects(document), key=str(document["package_id"]))
        return json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8")


register(HandoverJsonExporter())
register(StixExporter())

"""The package format ``soc-handover/1.0``: the signed document, its types and JSON Schemas.

A package is one JSON object: ``format``, ``package_id`` (UUID), ``type``, ``site``,
``sequence`` (gapless per site), ``created`` (UTC), ``payload`` (validated by the type's schema)
and ``signature``. Versioning: a new optional payload member is a minor change (1.x, receivers
ignore members they do not know); renaming, removing or retyping a member is a major change
(2.0, a new ``format`` value). Schemas live in ``schemas/*.schema.json``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel
from referencing import Registry, Resource

from soc_api.handover import FORMAT, records
from soc_api.handover.jcs import canonicalize
from soc_common.ecs import iso

PRODUCER = {"name": "soc-platform", "version": "1"}


class PackageError(Exception):
    """A document that is not a valid package; the message names the first problem."""


@dataclass(frozen=True)
class PackageType:
    name: str
    record: type[BaseModel]
    description: str


PACKAGE_TYPES: dict[str, PackageType] = {
    t.name: t
    for t in (
        PackageType("incident_report", records.IncidentReport, "incident report: initial, progress or closure"),
        PackageType("incident_update", records.IncidentUpdate, "change of a reported incident"),
        PackageType("drill_record", records.DrillRecord, "a drill and its findings"),
        PackageType("dossier_status", records.DossierStatus, "security-level dossier status and decision"),
        PackageType("kpi_snapshot", records.KpiSnapshot, "monitoring KPIs for a period"),
        PackageType("alert_summary", records.AlertSummary, "alert statistics and indicators for a period"),
    )
}


@cache
def schema(name: str) -> dict[str, Any]:
    """A schema from ``schemas/<name>.schema.json`` (``package``, ``manifest``, ``receipt`` or a type)."""
    text = resources.files("soc_api.handover").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_names() -> list[str]:
    folder = resources.files("soc_api.handover").joinpath("schemas")
    return sorted(p.name.removesuffix(".schema.json") for p in folder.iterdir() if p.name.endswith(".schema.json"))


@cache
def _registry() -> Registry:
    # Schemas refer to each other by their urn $id, resolved here, never over the network.
    return Registry().with_resources((schema(n)["$id"], Resource.from_contents(schema(n))) for n in schema_names())


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_schema(name: str, document: Any) -> None:
    """Raise PackageError naming the first schema violation."""
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise PackageError(f"{name}: {where}: {err.message}")


def payload_of(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="json")


def new_package(
    package_type: str,
    record: BaseModel,
    *,
    site: str,
    sequence: int,
    created: datetime,
    package_id: str | None = None,
) -> dict[str, Any]:
    """The unsigned package for ``record`` (validated against the schemas)."""
    kind = PACKAGE_TYPES.get(package_type)
    if kind is None:
        raise PackageError(f"unknown package type {package_type!r}")
    if not isinstance(record, kind.record):
        raise PackageError(f"{package_type} needs a {kind.record.__name__}, not {type(record).__name__}")
    document = {
        "format": FORMAT,
        "package_id": package_id or str(uuid.uuid4()),
        "type": package_type,
        "site": site,
        "sequence": sequence,
        "created": iso(created),
        "producer": PRODUCER,
        "payload": payload_of(record),
    }
    check_schema(package_type, document["payload"])
    return document


def validate_package(document: Any) -> None:
    """Check the package frame and its payload against the schemas (not the signature)."""
    check_schema("package", document)
    check_schema(document["type"], document["payload"])


def package_digest(document: dict[str, Any]) -> str:
    """sha256 hex of the canonical signed package: the identity receipts and manifests refer to."""
    return hashlib.sha256(canonicalize(document)).hexdigest()

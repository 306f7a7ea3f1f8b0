"""Every package type against its JSON Schema, and STIX 2.1 bundles against the OASIS validator."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import stix2validator
from stix2validator import validator as stix_validator_module

from soc_api.handover import exporters, stix
from soc_api.handover.keys import KeyRing
from soc_api.handover.package import PACKAGE_TYPES, PackageError, check_schema, new_package, validate_package
from soc_api.handover.signing import sign
from tests.handover.samples import T0, all_records, incident_report


def _signed(ring: KeyRing, kind: str, sequence: int = 1) -> dict[str, Any]:
    return sign(new_package(kind, all_records()[kind], site="hn", sequence=sequence, created=T0), ring.current())


def test_every_type_has_a_sample_and_a_schema() -> None:
    assert set(all_records()) == set(PACKAGE_TYPES)


@pytest.mark.parametrize("kind", sorted(PACKAGE_TYPES))
def test_package_of_each_type_validates(ring: KeyRing, kind: str) -> None:
    document = _signed(ring, kind)
    validate_package(document)
    assert document["format"] == "soc-handover/1.0" and document["type"] == kind


@pytest.mark.parametrize(
    ("kind", "path", "bad"),
    [
        ("incident_report", ("severity",), "apocalyptic"),
        ("incident_report", ("detected_at",), "yesterday"),
        ("kpi_snapshot", ("alerts_total",), -1),
        ("dossier_status", ("proposed_level",), 6),
        ("alert_summary", ("indicators", 0, "type"), "email"),
        ("drill_record", ("held_on",), "20/05/2026"),
        ("incident_update", ("incident_id",), None),
    ],
)
def test_schema_names_the_bad_payload_member(ring: KeyRing, kind: str, path: tuple[Any, ...], bad: Any) -> None:
    document = _signed(ring, kind)
    payload = copy.deepcopy(document["payload"])
    node = payload
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = bad
    with pytest.raises(PackageError, match="/".join(str(p) for p in path)):
        check_schema(kind, payload)


@pytest.mark.parametrize(
    "change",
    [
        {"format": "soc-handover/2.0"},
        {"sequence": 0},
        {"package_id": "not-a-uuid"},
        {"type": "gossip"},
        {"created": "2026-03-01T08:00:00+07:00"},  # UTC only
        {"site": "bad site!"},
    ],
)
def test_package_frame_violations_refused(ring: KeyRing, change: dict[str, Any]) -> None:
    with pytest.raises(PackageError):
        validate_package({**_signed(ring, "kpi_snapshot"), **change})


def test_builder_refuses_a_record_of_the_wrong_type() -> None:
    with pytest.raises(PackageError, match="needs a IncidentReport"):
        new_package("incident_report", all_records()["kpi_snapshot"], site="hn", sequence=1, created=T0)


@pytest.fixture
def offline_stix_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validator must use its bundled schemas: any HTTP fetch fails the test."""

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("stix2-validator tried to fetch over the network")

    monkeypatch.setattr(stix_validator_module.requests, "get", refuse)


def _assert_valid(bundle: dict[str, Any]) -> None:
    results = stix2validator.validate_instance(bundle, stix2validator.ValidationOptions(version="2.1", strict=False))
    messages = [str(e) for e in results.errors]
    assert results.is_valid, messages


@pytest.mark.usefixtures("offline_stix_validator")
@pytest.mark.parametrize("kind", ["incident_report", "alert_summary"])
def test_stix_bundles_pass_the_oasis_validator(ring: KeyRing, kind: str) -> None:
    document = _signed(ring, kind)
    exporter = exporters.get("stix-2.1")
    bundle = json.loads(exporter.export(document))
    _assert_valid(bundle)
    types = [o["type"] for o in bundle["objects"]]
    assert types.count("identity") == 1 and types.count("indicator") == 3 and types.count("sighting") == 3
    if kind == "incident_report":
        incident = next(o for o in bundle["objects"] if o["type"] == "incident")
        assert incident["x_soc_severity"] == "serious" and incident["x_soc_serious"] is True
        assert types.count("relationship") == 3


def test_stix_validator_catches_a_broken_object(offline_stix_validator: None) -> None:
    """The validation above can fail: a bad pattern and a missing created are reported."""
    objects = stix.incident_objects(incident_report(), "hn", "VP Tỉnh ủy Hà Nội")
    broken = copy.deepcopy(objects)
    indicator = next(o for o in broken if o["type"] == "indicator")
    indicator["pattern"] = "[ipv4-addr:value = "
    del next(o for o in broken if o["type"] == "incident")["created"]
    results = stix2validator.validate_instance(stix.bundle(broken, key="x"))
    assert not results.is_valid


def test_stix_ids_are_deterministic_and_patterns_escaped() -> None:
    a = stix.incident_objects(incident_report(), "hn", "HN")
    b = stix.incident_objects(incident_report(), "hn", "HN")
    assert [o["id"] for o in a] == [o["id"] for o in b]
    assert stix.incident_objects(incident_report(), "hcm", "HCM")[1]["id"] != a[1]["id"]
    tricky = incident_report().indicators[0].model_copy(update={"type": "url", "value": "http://x/'a\\b"})
    assert stix.pattern(tricky) == "[url:value = 'http://x/\\'a\\\\b']"


def test_stix_exporter_refuses_types_without_stix_form(ring: KeyRing) -> None:
    exporter = exporters.get("stix-2.1")
    assert not exporter.supports("kpi_snapshot")
    with pytest.raises(exporters.ExporterError):
        exporter.export(_signed(ring, "kpi_snapshot"))
    with pytest.raises(exporters.ExporterError, match="known"):
        exporters.get("misp")

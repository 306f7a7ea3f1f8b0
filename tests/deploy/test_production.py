"""deploy/production: the Compose layout, the load balancer and the Kibana saved objects hold together.

Docker is not available where the suite runs, so the Compose file is checked structurally: every
service the layout promises, health checks, pinned images from the configurable registry only,
Elasticsearch security and TLS, no secret written in the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "deploy" / "production"
EXPECTED = {"es-certs", "es01", "es02", "es03", "kibana", "postgres", "collector1", "collector2", "haproxy", "soc-api"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((PROD / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_every_service_of_the_layout_is_there_with_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == EXPECTED
    for name, svc in services.items():
        test = svc.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"


def test_images_are_pinned_and_come_from_the_registry_variable(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        image = svc["image"]
        assert image.startswith("${SOC_REGISTRY"), f"{name}: {image} bypasses SOC_REGISTRY"
        tag = image.rsplit(":", 1)[-1]
        assert "/" not in tag and "latest" not in image, f"{name}: {image} is not pinned"


def test_elasticsearch_nodes_have_security_and_tls(compose: dict[str, Any]) -> None:
    for node in ("es01", "es02", "es03"):
        env = compose["services"][node]["environment"]
        assert env["xpack.security.enabled"] == "true"
        assert env["xpack.security.http.ssl.enabled"] == "true"
        assert env["xpack.security.transport.ssl.enabled"] == "true"
        assert env["xpack.security.http.ssl.certificate"] == f"certs/{node}/{node}.crt"
        assert env["node.name"] == node
    instances = yaml.safe_load((PROD / "elasticsearch" / "instances.yml").read_text(encoding="utf-8"))
    assert {i["name"] for i in instances["instances"]} >= {"es01", "es02", "es03", "kibana"}
    assert "elasticsearch-certutil" in (PROD / "elasticsearch" / "setup-certs.sh").read_text(encoding="utf-8")


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|ENCRYPTIONKEY|_URL$", key):
                assert "${" in str(value), f"{name}: {key} holds a literal value"


def test_haproxy_passes_tls_through_to_the_collectors() -> None:
    cfg = (PROD / "haproxy" / "haproxy.cfg").read_text(encoding="utf-8")
    lines = [line.split("#")[0].strip() for line in cfg.splitlines()]
    assert "mode tcp" in lines
    binds = [line for line in lines if line.startswith("bind ")]
    assert binds and not any("ssl" in b or "crt" in b for b in binds), "TLS must not terminate at HAProxy"
    servers = [line for line in lines if line.startswith("server ")]
    assert {s.split()[1] for s in servers} == {"collector1", "collector2"}


def test_production_configs_load_with_the_real_models() -> None:
    from collector.config import CollectorConfig
    from soc_api.config import ApiConfig
    from soc_common.config import load_config

    collector = load_config(CollectorConfig, PROD / "config" / "collector.toml", role="collector")
    assert collector.store.kind == "elasticsearch" and collector.ingest.host == "0.0.0.0"
    api = load_config(ApiConfig, PROD / "config" / "api.toml", role="api")
    assert api.listen.tls and api.store is not None and api.store.kind == "elasticsearch"


def _mapped_fields() -> set[str]:
    template = json.loads((ROOT / "collector" / "store" / "templates" / "mappings.json").read_text(encoding="utf-8"))

    def walk(props: dict[str, Any], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for key, value in props.items():
            out |= walk(value["properties"], f"{prefix}{key}.") if "properties" in value else {prefix + key}
        return out

    return walk(template["template"]["mappings"]["properties"])


def test_kibana_saved_objects_are_importable_and_use_mapped_fields() -> None:
    lines = (PROD / "kibana" / "soc-saved-objects.ndjson").read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines if line.strip()]
    by_key = {(o["type"], o["id"]): o for o in objects}
    assert len(by_key) == len(objects)
    pattern = by_key[("index-pattern", "soc-events")]
    assert pattern["attributes"]["title"] == "soc-events-*"
    assert pattern["attributes"]["timeFieldName"] == "@timestamp"
    mapped = _mapped_fields()
    dashboards = [o for o in objects if o["type"] == "dashboard"]
    assert len(dashboards) == 1
    for obj in objects:
        assert {"id", "type", "attributes", "references"} <= set(obj)
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in by_key, f"{obj['id']}: dangling reference {ref}"
        if obj["type"] == "visualization":
            state = json.loads(obj["attributes"]["visState"])
            source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert source["indexRefName"] in {r["name"] for r in obj["references"]}
            for agg in state["aggs"]:
                field = agg["params"].get("field")
                assert field is None or field in mapped, f"{obj['id']}: {field} is not in the ECS mapping"
    panels = json.loads(dashboards[0]["attributes"]["panelsJSON"])
    names = {r["name"] for r in dashboards[0]["references"]}
    assert len(panels) >= 4 and all(p["panelRefName"] in names for p in panels)

"""The SOC API's agents, enrolment tokens and policies, driven against a real collector."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from sqlalchemy import select

from soc_api.db.models import AuditEntry
from soc_api.kpi.models import DeclaredAssets
from soc_common.ecs import new_event, put
from tests.agents_admin.conftest import World
from tests.collector.ingest_harness import Agent, sample_events


def inventory_event(agent: Agent, *, protection: bool, age: float = 1.5) -> dict[str, object]:
    event = new_event(kind="state", dataset="soc.inventory", module="soc")
    put(event, "host.name", agent.hostname)
    put(event, "host.hostname", agent.hostname)
    put(event, "host.ip", ["10.1.2.3", "fe80::1"])
    put(event, "host.os", {"name": "Debian GNU/Linux", "version": "12", "type": "linux"})
    put(event, "soc.inventory.users", [{"name": "an"}, {"name": "binh"}])
    put(event, "soc.inventory.protection", {"product": "ClamAV", "enabled": protection, "running": protection,
                                            "signature_age_days": age})  # fmt: skip
    return event


def enrolled(world: World, tmp_path: Path, host: str, site: str, *, protection: bool = True) -> Agent:
    agent = world.stack.agent(tmp_path, host, site=site)
    r = agent.ship([inventory_event(agent, protection=protection)])
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    return agent


def test_list_joins_registry_and_latest_inventory(world: World, tmp_path: Path) -> None:
    on = enrolled(world, tmp_path, "pc-hn-01", "hn")
    off = enrolled(world, tmp_path, "pc-hn-02", "hn", protection=False)
    with world.api.state.sessions.begin() as s:
        s.add(DeclaredAssets(site="hn", pcs=3, servers=1, updated_by="admin"))
    r = world.client.get("/api/v1/agents", headers=world.as_("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    by_host = {a["hostname"]: a for a in body["agents"]}
    assert set(by_host) == {"pc-hn-01", "pc-hn-02"}
    first = by_host["pc-hn-01"]
    assert first["id"] == on.agent_id and first["site"] == "hn" and first["status"] == "online"
    assert first["protection"] == {"state": "on", "product": "ClamAV", "running": True, "signature_age_days": 1.5,
                                   "signature_outdated": False}  # fmt: skip
    assert first["addresses"] == ["10.1.2.3", "fe80::1"] and first["version"] == "t"
    assert by_host["pc-hn-02"]["protection"]["state"] == "off"
    (hn,) = [s for s in body["sites"] if s["site"] == "hn"]
    assert (hn["agents"], hn["online"], hn["protected"], hn["protection_off"]) == (2, 2, 1, 1)
    assert hn["declared_pcs"] == 3 and hn["coverage"] == 0.25
    detail = world.client.get(f"/api/v1/agents/{off.agent_id}", headers=world.as_("auditor")).json()
    assert detail["inventory"]["os_name"] == "Debian GNU/Linux" and detail["inventory"]["users"] == ["an", "binh"]
    assert detail["site_layer"] == "site-hn" and detail["agent_layer"] is None


def test_site_scope_and_roles(world: World, tmp_path: Path) -> None:
    agent = enrolled(world, tmp_path, "pc-hn-01", "hn")
    seen = world.client.get("/api/v1/agents", headers=world.as_("officer_hcm")).json()
    assert seen["agents"] == []
    assert world.client.get(f"/api/v1/agents/{agent.agent_id}", headers=world.as_("officer_hcm")).status_code == 404
    assert len(world.client.get("/api/v1/agents", headers=world.as_("officer_hn")).json()["agents"]) == 1
    approver = world.client.get("/api/v1/agents", headers=world.as_("approver_hn"))
    assert approver.status_code == 403 and approver.headers["content-type"] == "application/problem+json"
    for who in ("officer_hn", "auditor"):
        r = world.client.post(f"/api/v1/agents/{agent.agent_id}/revoke", headers=world.as_(who))
        assert r.status_code == 403, r.text
        assert world.client.post("/api/v1/enrolment-tokens", json={}, headers=world.as_(who)).status_code == 403
        assert (
            world.client.put("/api/v1/policies/default", json={"policy": {}}, headers=world.as_(who)).status_code == 403
        )
    assert world.client.get("/api/v1/agents").status_code == 401
    assert world.client.get("/api/v1/policies/site-hn", headers=world.as_("officer_hcm")).status_code == 404
    assert world.client.get("/api/v1/policies/site-hn", headers=world.as_("officer_hn")).status_code == 200


def test_revoke_makes_the_collector_refuse_the_next_batch(world: World, tmp_path: Path) -> None:
    agent = enrolled(world, tmp_path, "pc-hn-01", "hn")
    r = world.client.post(f"/api/v1/agents/{agent.agent_id}/revoke", headers=world.as_("admin"))
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    refused = agent.ship(sample_events(1))
    assert refused.status_code == 403 and "revoked" in refused.text
    again = world.client.post(f"/api/v1/agents/{agent.agent_id}/revoke", headers=world.as_("admin"))
    assert again.status_code == 409
    with world.api.state.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "agent.revoke")).one()
    assert entry.object_id == agent.agent_id and entry.actor == "admin"
    assert world.client.post("/api/v1/agents/no-such/revoke", headers=world.as_("admin")).status_code == 404


def test_token_create_enrol_and_revoke(world: World, tmp_path: Path) -> None:
    r = world.client.post(
        "/api/v1/enrolment-tokens", json={"site": "hcm", "uses": 2, "ttl_hours": 2, "note": "lô 1"},
        headers=world.as_("admin"),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["site"] == "hcm" and created["uses_left"] == 2 and created["state"] == "valid"
    listed = world.client.get("/api/v1/enrolment-tokens", headers=world.as_("officer_hcm")).json()
    assert [t["id"] for t in listed] == [created["id"]] and "token" not in listed[0]
    assert world.client.get("/api/v1/enrolment-tokens", headers=world.as_("officer_hn")).json() == []
    first = Agent(world.stack, tmp_path / "a1", "pc-hcm-01")
    assert first.enroll(created["token"]).status_code == 200
    assert world.stack.server.registry.get_agent(first.agent_id).site == "hcm"  # type: ignore[union-attr]
    r = world.client.delete(f"/api/v1/enrolment-tokens/{created['id']}", headers=world.as_("admin"))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert Agent(world.stack, tmp_path / "a2", "pc-hcm-02").enroll(created["token"]).status_code == 401
    with world.api.state.sessions() as s:
        actions = set(s.scalars(select(AuditEntry.action)))
        texts = " ".join(str(e.after) for e in s.scalars(select(AuditEntry)))
    assert {"enrolment_token.create", "enrolment_token.revoke"} <= actions
    assert created["token"].split(".", 1)[1] not in texts  # the secret is never audited
    bad = world.client.post("/api/v1/enrolment-tokens", json={"uses": 0}, headers=world.as_("admin"))
    assert bad.status_code == 422


def test_policy_change_reaches_the_agent(world: World, tmp_path: Path) -> None:
    agent = enrolled(world, tmp_path, "pc-hn-01", "hn")
    with agent.client() as c:
        before = c.get(f"{world.stack.url}/v1/policy").json()
    site_policy = {"shipping": {"batch_max_events": 123}}
    r = world.client.put("/api/v1/policies/site-hn", json={"policy": site_policy}, headers=world.as_("admin"))
    assert r.status_code == 200, r.text
    assert r.json() == {"layer": "site-hn", "exists": True, "file": "site-hn.json", "policy": site_policy}
    own = {"status_interval": 77}
    r = world.client.put(f"/api/v1/policies/agent-{agent.agent_id}", json={"policy": own}, headers=world.as_("admin"))
    assert r.status_code == 200, r.text
    with agent.client() as c:
        after = c.get(f"{world.stack.url}/v1/policy").json()
    assert after["version"] != before["version"]
    assert after["policy"] == {**site_policy, **own}
    detail = world.client.get(f"/api/v1/agents/{agent.agent_id}", headers=world.as_("admin")).json()
    assert detail["agent_layer"] == own and detail["policy"] == after["policy"]
    assert detail["policy_version"] == after["version"]
    invalid = world.client.put("/api/v1/policies/default", json={"policy": {"collector_url": "https://evil"}},
                               headers=world.as_("admin"))  # fmt: skip
    assert invalid.status_code == 422 and "collector_url" in invalid.json()["detail"]
    typo = world.client.put("/api/v1/policies/default", json={"policy": {"shipping": {"no_such_key": 1}}},
                            headers=world.as_("admin"))  # fmt: skip
    assert typo.status_code == 422
    removed = world.client.put(f"/api/v1/policies/agent-{agent.agent_id}", json={"policy": None},
                               headers=world.as_("admin"))  # fmt: skip
    assert removed.status_code == 200 and removed.json()["exists"] is False
    with agent.client() as c:
        assert c.get(f"{world.stack.url}/v1/policy").json()["policy"] == site_policy
    assert world.client.get("/api/v1/policies/../etc", headers=world.as_("admin")).status_code == 404
    assert world.client.get("/api/v1/policies/bogus", headers=world.as_("admin")).status_code == 404


def test_collector_down_is_a_503_problem(world: World) -> None:
    world.stack.server.stop()
    r = world.client.get("/api/v1/agents", headers=world.as_("admin"))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:soc:problem:collector-unavailable" and "cannot be reached" in r.json()["detail"]
    assert world.client.post("/api/v1/enrolment-tokens", json={}, headers=world.as_("admin")).status_code == 503


def test_wrong_admin_key_is_a_503_not_a_500(world: World) -> None:
    from collector.ingest.admin import AdminCredentials, credentials_path

    cred_id = world.admin_key.split("_", 1)[1].split(".", 1)[0]
    assert AdminCredentials(credentials_path(world.stack.config.state_dir)).revoke(cred_id)
    r = world.client.get("/api/v1/enrolment-tokens", headers=world.as_("admin"))
    assert r.status_code == 503 and "refused the admin credential" in r.json()["detail"]


def _raw_get(world: World, path: str, ctx: ssl.SSLContext, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(verify=ctx, timeout=10) as c:
        return c.get(f"{world.stack.url}{path}", headers=headers or {})

"""The collector's /v1/admin/ paths: who may call them, and what they accept."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
from typer.testing import CliRunner

from collector.cli import app as collector_cli
from collector.ingest.admin import AdminCredentials, credentials_path, issue_admin_cert
from tests.collector.ingest_harness import Stack, sample_events


def _ctx(stack: Stack, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(stack.ca_file))
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def _get(stack: Stack, path: str, ctx: ssl.SSLContext, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(verify=ctx, timeout=10) as c:
        return c.get(f"{stack.url}{path}", headers=headers)


def test_admin_paths_refuse_agent_certificates_and_missing_credentials(
    stack: Stack, admin_key: str, tmp_path: Path
) -> None:
    agent = stack.agent(tmp_path, "pc-01", site="hn")
    assert _get(stack, "/v1/admin/agents", _ctx(stack)).status_code == 401
    assert _get(stack, "/v1/admin/agents", _ctx(stack), "socadm_00000000.wrong").status_code == 401
    agent_ctx = agent.ssl_context()
    assert _get(stack, "/v1/admin/agents", agent_ctx).status_code == 403
    # An agent certificate is refused even together with a valid admin key.
    assert _get(stack, "/v1/admin/agents", agent_ctx, admin_key).status_code == 403
    ok = _get(stack, "/v1/admin/agents", _ctx(stack), admin_key)
    assert ok.status_code == 200 and [a["hostname"] for a in ok.json()["agents"]] == ["pc-01"]
    # Refused POSTs with a body do not desynchronise the connection: the next request still works.
    with httpx.Client(verify=agent_ctx, timeout=10) as c:
        r = c.post(f"{stack.url}/v1/admin/tokens", json={"uses": 1, "ttl_seconds": 3600})
        assert r.status_code == 403
        assert c.get(f"{stack.url}/health").status_code == 200


def test_admin_certificate_works_on_admin_paths_only(stack: Stack, tmp_path: Path) -> None:
    creds = AdminCredentials(credentials_path(stack.config.state_dir))
    cred_id, cert, key = issue_admin_cert(stack.server.ca, creds, "soc-api", tmp_path / "admin")
    assert (key.stat().st_mode & 0o777) == 0o600
    ctx = _ctx(stack, cert, key)
    assert _get(stack, "/v1/admin/tokens", ctx).status_code == 200
    with httpx.Client(verify=ctx, timeout=10) as c:
        body = "".join(json.dumps(e) + "\n" for e in sample_events(1))
        assert c.post(f"{stack.url}/v1/events", content=body).status_code == 403
    assert creds.revoke(cred_id)
    assert _get(stack, "/v1/admin/tokens", ctx).status_code == 403
    assert all("hash" not in e for e in creds.entries())


def test_admin_requests_are_validated(stack: Stack, admin_key: str) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(verify=_ctx(stack), timeout=10, headers=auth) as c:
        url = f"{stack.url}/v1/admin"
        assert c.post(f"{url}/tokens", content=b"{not json").status_code == 400
        assert c.post(f"{url}/tokens", json={"uses": 0, "ttl_seconds": 3600}).status_code == 422
        assert c.post(f"{url}/tokens", json={"uses": 1, "ttl_seconds": 3600, "site": "../x"}).status_code == 422
        assert c.post(f"{url}/tokens/zzz/revoke", json={}).status_code == 404
        assert c.get(f"{url}/policies/site-..").status_code == 404
        assert c.get(f"{url}/nothing").status_code == 404
        assert c.post(f"{url}/policies/default", json={"policy": [1]}).status_code == 422
        created = c.post(f"{url}/tokens", json={"uses": 1, "ttl_seconds": 3600, "site": "hn"})
        assert created.status_code == 201 and created.json()["token"].startswith(created.json()["id"] + ".")
        # A TOML layer is kept as a backup when the layer is written through the API.
        policy_dir = stack.config.policy_dir
        policy_dir.mkdir(parents=True, exist_ok=True)
        (policy_dir / "default.toml").write_text("status_interval = 30\n")
        assert c.get(f"{url}/policies/default").json()["policy"] == {"status_interval": 30}
        assert c.post(f"{url}/policies/default", json={"policy": {"status_interval": 60}}).status_code == 200
        assert c.get(f"{url}/policies/default").json() == {
            "layer": "default", "exists": True, "file": "default.json", "policy": {"status_interval": 60}
        }  # fmt: skip
        assert len(list(policy_dir.glob("default.toml.replaced-*"))) == 1


def test_cli_admin_key_and_cert(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()
    r = runner.invoke(collector_cli, ["admin-key", "--name", "soc-api", "-c", str(config)])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[0]
    creds = AdminCredentials(credentials_path(tmp_path / "data" / "collector"))
    assert (
        creds.check_key(key) is not None
        and key.split(".", 1)[1] not in credentials_path(tmp_path / "data" / "collector").read_text()
    )
    r = runner.invoke(collector_cli, ["admin-cert", "--out", str(tmp_path / "out"), "-c", str(config)])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"admin.crt", "admin.key", "ca.crt"}
    cert_id = next(e["id"] for e in creds.entries() if e["kind"] == "cert")
    assert runner.invoke(collector_cli, ["admin-revoke", cert_id, "-c", str(config)]).exit_code == 0
    assert runner.invoke(collector_cli, ["admin-revoke", cert_id, "-c", str(config)]).exit_code == 1
    assert runner.invoke(collector_cli, ["admin-key", "--name", "bad name!", "-c", str(config)]).exit_code == 2

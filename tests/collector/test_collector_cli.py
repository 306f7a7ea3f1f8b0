"""``soc collector`` administration commands against a real state database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector.cli import app
from collector.config import CollectorConfig
from collector.ingest.ca import CertificateAuthority
from collector.ingest.registry import Registry
from soc_common.config import load_config

runner = CliRunner()


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_token_lifecycle(cfg_file: Path) -> None:
    code, out, err = invoke("token", "create", "--site", "hn", "--uses", "3", "--ttl", "2h", "--config", str(cfg_file))
    assert code == 0, err
    token = out.strip()
    token_id = token.split(".")[0]
    assert "shown once" in err
    code, out, _ = invoke("token", "list", "--config", str(cfg_file))
    assert code == 0 and token_id in out and "valid" in out and token.split(".")[1] not in out
    assert invoke("token", "revoke", token_id, "--config", str(cfg_file))[0] == 0
    assert "revoked" in invoke("token", "list", "--config", str(cfg_file))[1]
    assert invoke("token", "revoke", token_id, "--config", str(cfg_file))[0] == 1


def test_bad_ttl_and_bad_config_are_usage_errors(cfg_file: Path, tmp_path: Path) -> None:
    assert invoke("token", "create", "--ttl", "soon", "--config", str(cfg_file))[0] == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[ingest]\nprot = 1\n")
    code, _, err = invoke("token", "list", "--config", str(bad))
    assert code == 2 and "ingest.prot" in err


def test_agent_list_and_revoke(cfg_file: Path) -> None:
    cfg = load_config(CollectorConfig, cfg_file, role="collector")
    ca = CertificateAuthority(cfg.ca_dir)
    from tests.collector.ingest_harness import make_csr

    registry = Registry(cfg.registry_path)
    token, _ = registry.create_token(site="dn", uses=1, ttl_seconds=60)
    _, csr = make_csr()
    agent, _ = registry.enroll(
        token, hostname="pc-9", os_name="linux", version="1", issue=lambda a: ca.issue_client(csr, a, 30)
    )
    registry.close()
    code, out, _ = invoke("agent", "list", "--config", str(cfg_file))
    assert code == 0 and agent.id in out and "pc-9" in out and "active" in out
    assert invoke("agent", "revoke", agent.id, "--config", str(cfg_file))[0] == 0
    listed = json.loads(invoke("agent", "list", "--json", "--config", str(cfg_file))[1])
    assert listed[0]["revoked_at"] is not None
    assert invoke("agent", "revoke", "no-such-agent", "--config", str(cfg_file))[0] == 1


def test_ca_fingerprint(cfg_file: Path) -> None:
    assert invoke("ca", "fingerprint", "--config", str(cfg_file))[0] == 1  # no CA yet, and none created
    cfg = load_config(CollectorConfig, cfg_file, role="collector")
    ca = CertificateAuthority(cfg.ca_dir)
    code, out, _ = invoke("ca", "fingerprint", "--config", str(cfg_file))
    assert code == 0 and out.strip() == f"sha256:{ca.fingerprint}"
    assert (cfg.ca_dir / "ca.key").stat().st_mode & 0o077 == 0


def test_policy_show(cfg_file: Path) -> None:
    cfg = load_config(CollectorConfig, cfg_file, role="collector")
    cfg.policy_dir.mkdir(parents=True)
    (cfg.policy_dir / "default.toml").write_text("[shipper]\nbatch_size = 10\n")
    (cfg.policy_dir / "site-hn.toml").write_text("[shipper]\nbatch_size = 20\n")
    code, out, _ = invoke("policy", "show", "--site", "hn", "--config", str(cfg_file))
    assert code == 0 and json.loads(out)["policy"] == {"shipper": {"batch_size": 20}}
    assert invoke("policy", "show", "--agent", "unknown", "--config", str(cfg_file))[0] == 1

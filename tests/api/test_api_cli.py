"""``soc api`` commands against a real database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from soc_api.cli import app
from soc_api.db.session import make_engine

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'soc.db'}"
    monkeypatch.setenv("SOC_API_DATABASE__URL", url)
    monkeypatch.setenv("SOC_API_DATA_DIR", str(tmp_path))
    return url


def test_migrate_users_apikeys_and_verify(env: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    r = runner.invoke(app, ["user", "create", "lan", "--role", "officer", "--site", "hn", "--password-stdin"],
                      input="mật-khẩu-đủ-dài-2025\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["user", "create", "lan", "--role", "officer", "--password-stdin"], input="x" * 20 + "\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(app, ["user", "create", "bad", "--role", "king", "--password-stdin"], input="x" * 20 + "\n")
    assert r.exit_code == 1 and "unknown role" in r.output
    r = runner.invoke(app, ["user", "list"])
    assert "lan" in r.output and "officer" in r.output and "argon2" not in r.output
    r = runner.invoke(app, ["apikey", "create", "soar", "--scopes", "alerts:read,alerts:triage"])
    assert r.exit_code == 0 and r.output.startswith("soc_")
    assert runner.invoke(app, ["apikey", "create", "x", "--scopes", "root"]).exit_code == 2
    r = runner.invoke(app, ["verify-audit"])
    assert r.exit_code == 0 and "intact (2 entries)" in r.output

    engine = make_engine(env)
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    r = runner.invoke(app, ["verify-audit"])
    assert r.exit_code == 1 and "seq 2" in r.output

"""ApiConfig: defaults, the persisted session secret, validation, the shared [store] section."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc_api.bootstrap import ensure_admin
from soc_api.cli import app
from soc_api.config import SECRET_FILE_NAME, ApiConfig, ensure_session_secret, load_api_config
from soc_api.db.migrate import upgrade
from soc_api.db.session import make_engine, make_session_factory
from soc_api.services.auth import verify_password
from soc_common.config import ConfigError


def test_defaults_are_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path))
    cfg = load_api_config(None)
    assert cfg.listen.host == "127.0.0.1" and cfg.listen.port == 8000
    assert cfg.database.url == f"sqlite:///{tmp_path / 'soc.db'}"
    assert cfg.language == "vi" and cfg.timezone == "Asia/Ho_Chi_Minh"
    assert cfg.security.cookie_secure and cfg.store is None


def test_session_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    cfg = ApiConfig(data_dir=tmp_path)
    first = ensure_session_secret(cfg).get_secret_value()
    path = tmp_path / SECRET_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_session_secret(cfg).get_secret_value() == first and len(first) >= 32
    assert first not in repr(cfg)


def test_invalid_settings_fail_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "api.toml"
    bad.write_text('timezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="timezone"):
        load_api_config(bad)
    bad.write_text('[listen]\ntls_cert = "/x.pem"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="tls_key"):
        load_api_config(bad)
    bad.write_text('[security]\nsession_secret = "short"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="32"):
        ensure_session_secret(load_api_config(bad))


def test_store_section_is_the_collectors(tmp_path: Path) -> None:
    cfg = tmp_path / "api.toml"
    cfg.write_text(f'[store]\nkind = "sqlite"\nsqlite_path = "{tmp_path / "e.db"}"\n', encoding="utf-8")
    assert load_api_config(cfg).store is not None
    cfg.write_text('[store]\nkind = "mongodb"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store\.kind"):
        load_api_config(cfg)


def test_ensure_admin_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'soc.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions.begin() as s:
        first = ensure_admin(s, "admin", "mật-khẩu-quản-trị-2025")
    with sessions.begin() as s:
        again = ensure_admin(s, "admin", "a-different-password-x")
        assert again.id == first.id and again.role == "admin" and again.site_scope is None
        assert verify_password(again.password_hash, "mật-khẩu-quản-trị-2025")
    engine.dispose()


def test_serve_refuses_plain_http_off_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_API_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOC_API_LISTEN__HOST", "0.0.0.0")
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 2 and "refusing to serve plain HTTP" in r.output

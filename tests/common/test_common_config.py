"""Configuration: defaults, file, environment overrides, and one-line errors naming the key."""

from pathlib import Path

import pytest

from soc_common.config import ConfigError, Section, load_config


class Ingest(Section):
    host: str = "127.0.0.1"
    port: int = 8443


class Sample(Section):
    name: str = "default"
    ingest: Ingest = Ingest()


def test_defaults_run_with_no_file() -> None:
    cfg = load_config(Sample, None, role="sample")
    assert cfg.ingest.port == 8443


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sample.toml"
    path.write_text('name = "from-file"\n[ingest]\nport = 9000\n', encoding="utf-8")
    assert load_config(Sample, path, role="sample").ingest.port == 9000
    monkeypatch.setenv("SOC_SAMPLE_INGEST__PORT", "9100")
    cfg = load_config(Sample, path, role="sample")
    assert cfg.ingest.port == 9100
    assert cfg.name == "from-file"


def test_wrong_value_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[ingest]\nport = "not-a-port"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(Sample, path, role="sample")
    message = str(err.value)
    assert "ingest.port" in message and str(path) in message
    assert "\n" not in message


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[ingest]\nprot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ingest\.prot"):
        load_config(Sample, path, role="sample")


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Sample, tmp_path / "missing.toml", role="sample")
    broken = tmp_path / "broken.toml"
    broken.write_text("[ingest\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Sample, broken, role="sample")

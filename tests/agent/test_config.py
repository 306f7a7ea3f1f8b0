"""Agent configuration: defaults, validation errors that name the key, lazy plug-in validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import AgentConfig, load_agent_config, validate_sources
from agent.plugins import PluginError, PluginRegistry, PluginSpec
from agent.sources.inventory import InventorySource
from soc_common.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_defaults_run_an_inventory_source_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path))
    config = load_agent_config(write(tmp_path, ""))
    assert [(s.type, s.name) for s in config.sources] == [("inventory", "inventory")]
    assert config.data_dir == tmp_path / "agent"
    assert config.shipping.batch_max_events == 2000 and config.shipping.gzip
    assert config.spool.max_bytes == 1024**3 and config.spool.on_full == "block"


def test_source_setting_error_names_the_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[sources]]
type = "inventory"
[[sources]]
type = "inventory"
name = "second"
[[sources]]
type = "inventory"
name = "third"
interval = "soon"
""",
    )
    with pytest.raises(ConfigError) as err:
        load_agent_config(path)
    assert "sources[2].interval" in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_source_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sources]]\ntype = "inventory"\nintervall = 5\n')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.intervall"):
        load_agent_config(path)


def test_unknown_source_type_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.type.*unknown source type 'nope'.*inventory"):
        load_agent_config(write(tmp_path, '[[sources]]\ntype = "nope"\n'))


def test_section_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"spool\.on_full"):
        load_agent_config(write(tmp_path, '[spool]\non_full = "explode"\n'))
    with pytest.raises(ConfigError, match="collector_url"):
        load_agent_config(write(tmp_path, 'collector_url = "http://plain:80"\n'))


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    text = '[[sources]]\ntype = "inventory"\nname = "a"\n[[sources]]\ntype = "inventory"\nname = "a"\n'
    with pytest.raises(ConfigError, match="used twice"):
        load_agent_config(write(tmp_path, text))


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOC_AGENT_SHIPPING__EPS_CAP", "250")
    assert load_agent_config(write(tmp_path, "")).shipping.eps_cap == 250


def test_plugin_that_fails_to_import_only_breaks_configs_using_it() -> None:
    plugins = PluginRegistry()
    plugins.register(PluginSpec("broken", "agent.no_such_module_for_tests", "X"))
    with pytest.raises(PluginError, match="not available"):
        plugins.load("broken")
    ok = AgentConfig.model_validate({"sources": [{"type": "inventory"}]})
    validate_sources(ok, plugins=plugins)
    bad = AgentConfig.model_validate({"sources": [{"type": "inventory"}, {"type": "broken"}]})
    with pytest.raises(ConfigError, match=r"sources\[1\]\.type.*not available"):
        validate_sources(bad, plugins=plugins)


def test_registry_builds_sources_with_their_settings() -> None:
    source = PluginRegistry().create("inventory", "inv", {"interval": 42})
    assert isinstance(source, InventorySource)
    assert source.settings.interval == 42 and source.name == "inv"


def test_builtin_plugins_import_when_present() -> None:
    """Every built-in type either loads or explains why it is not available on this host."""
    plugins = PluginRegistry()
    for type_name in plugins.types:
        try:
            loaded = plugins.load(type_name)
        except PluginError as exc:
            assert "not available" in str(exc)
        else:
            assert loaded.source_class.type == type_name

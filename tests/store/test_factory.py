from __future__ import annotations

from pathlib import Path

import pytest

from collector.store.base import Query
from collector.store.factory import open_store
from collector.store.settings import StoreSettings
from collector.store.sqlite import SqliteEventStore
from soc_common.config import ConfigError, load_config


def test_open_store_builds_sqlite_from_settings(tmp_path: Path) -> None:
    store = open_store(StoreSettings(sqlite_path=tmp_path / "sub" / "events.db", retention_days=7))
    assert isinstance(store, SqliteEventStore) and store.retention_days == 7
    assert store.count(Query()) == 0
    assert (tmp_path / "sub" / "events.db").exists()
    store.close()


def test_sqlite_path_defaults_under_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path))
    assert StoreSettings().sqlite_path == tmp_path / "events.db"


def test_bad_settings_fail_with_the_key_name(tmp_path: Path) -> None:
    cfg = tmp_path / "store.toml"
    cfg.write_text('kind = "mongodb"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="kind"):
        load_config(StoreSettings, cfg, "storetest")

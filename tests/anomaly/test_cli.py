"""``soc collector anomaly once / status / explain`` against a real collector.toml and SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from collector.cli import app
from collector.config import CollectorConfig
from collector.store.sqlite import SqliteEventStore
from soc_common.config import load_config

from .conftest import DEMO_ZONES, history, ingest, replay


def write_config(tmp_path: Path) -> Path:
    zones = "\n".join(f'[[enrich.zones]]\nname = "{z["name"]}"\ncidrs = {json.dumps(z["cidrs"])}\n' for z in DEMO_ZONES)
    path = tmp_path / "collector.toml"
    path.write_text(
        f"""data_dir = {json.dumps(str(tmp_path / "data"))}
[store]
kind = "sqlite"
sqlite_path = {json.dumps(str(tmp_path / "events.db"))}
[alerts]
database_url = ""
[anomaly]
initial_lookback = "5d"
[enrich]
default_site = "hn"
{zones}""",
        encoding="utf-8",
    )
    return path


def test_once_status_explain(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    config = load_config(CollectorConfig, config_path, role="collector")
    store = SqliteEventStore(tmp_path / "events.db")
    ingest(store, config, history() + replay("port-scan"))
    store.close()
    runner = CliRunner()

    once = runner.invoke(app, ["anomaly", "once", "--config", str(config_path), "--now", "2024-03-01T10:30:00Z"])
    assert once.exit_code == 0, once.output
    lines = once.output.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["alerts"] == 2 and summary["errors"] == {} and summary["windows"]["fanout"] == 17
    scan_id = next(line.split()[0] for line in lines if "anomaly.fanout.port_scan" in line)
    written = [json.loads(x) for x in (tmp_path / "data" / "alerts.jsonl").read_text().splitlines()]
    assert {a["rule_id"] for a in written} == {"anomaly.fanout.port_scan", "anomaly.volume.dataset_spike"}

    status = runner.invoke(app, ["anomaly", "status", "--config", str(config_path)])
    assert status.exit_code == 0, status.output
    state = json.loads(status.output)
    assert state["checkpoints"]["fanout"].startswith("2024-03-01T10:20:00")
    assert state["reported"] == {"fanout": 1, "volume": 1} and state["last_runs"]["fanout"]["windows"] == 17

    explain = runner.invoke(app, ["anomaly", "explain", scan_id, "--config", str(config_path)])
    assert explain.exit_code == 0, explain.output
    why = json.loads(explain.output)
    assert why["rule_id"] == "anomaly.fanout.port_scan"
    assert why["explanation"]["observed"] >= 1000 and why["explanation"]["threshold"] == 100

    missing = runner.invoke(app, ["anomaly", "explain", "no-such-alert", "--config", str(config_path)])
    assert missing.exit_code == 1

    rerun = runner.invoke(app, ["anomaly", "once", "--config", str(config_path), "--now", "2024-03-01T10:30:00Z"])
    assert rerun.exit_code == 0 and json.loads(rerun.output.strip().splitlines()[-1])["alerts"] == 0

"""``soc agent`` commands: status, one-shot sends through the real spool/shipper into the collector,
enrolment errors, exit codes, and the service unit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import UNIT_SOURCE, app
from agent.enroll import enroll
from agent.status import render_status, status_path, write_status
from tests.agent.support import Collector, agent_config

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
runner = CliRunner()


def config_file(tmp_path: Path, collector_url: str = "") -> Path:
    path = tmp_path / "agent.toml"
    lines = [f'data_dir = "{tmp_path / "agent"}"', "sources = []"]
    if collector_url:
        lines.insert(0, f'collector_url = "{collector_url}"')
    lines += ["[shipping]", "flush_interval = 0.05", "backoff_initial = 0.05", "backoff_max = 0.5"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_status_without_a_running_agent_is_a_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--config", str(config_file(tmp_path))])
    assert result.exit_code == 1
    assert "no status" in result.output


def test_status_renders_and_prints_json(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    status = {
        "state": "running",
        "written_epoch": 0,
        "agent_id": "a-1",
        "spool": {"pending_events": 12, "pending_bytes": 3000, "disk_bytes": 4096, "max_bytes": 1024**3},
        "shipping": {"acked": 5, "last_error": "HTTP 503", "last_error_at": "t", "collector_url": "https://c"},
        "sources": [{"name": "auth", "type": "files", "running": True, "events": 7, "last_error": "boom"}],
    }
    write_status(status_path(tmp_path / "agent"), status)
    result = runner.invoke(app, ["status", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "stale" in result.output  # written_epoch 0: the agent is not updating it
    assert "12 events" in result.output and "HTTP 503" in result.output and "auth (files)" in result.output
    result = runner.invoke(app, ["status", "--config", str(cfg), "--json"])
    assert json.loads(result.output)["agent_id"] == "a-1"


def test_render_fresh_status_is_running() -> None:
    import time

    text = render_status({"state": "running", "written_epoch": time.time(), "interval": 5}, now=time.time())
    assert "state      running" in text


def test_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[spool]\non_full = "maybe"\n')
    result = runner.invoke(app, ["status", "--config", str(bad)])
    assert result.exit_code == 2
    assert "spool.on_full" in result.output


def test_enrol_refused_exits_1(collector: Collector, tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    args = ["enroll", "--collector", collector.url, "--token", "wrong", "--ca-fingerprint", collector.fingerprint]
    result = runner.invoke(app, [*args, "--config", str(cfg)])
    assert result.exit_code == 1 and "refused" in result.output


def test_enrol_command_with_yes(collector: Collector, tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    args = ["enroll", "--collector", collector.url, "--token", collector.token(), "--yes", "--config", str(cfg)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Collector CA fingerprint" in result.output and "enrolled as agent" in result.output


def test_send_file_delivers_every_line_once(collector: Collector, tmp_path: Path) -> None:
    enroll(collector.url, collector.token(), tmp_path / "agent", ca_fingerprint=collector.fingerprint)
    cfg = config_file(tmp_path, collector.url)
    log = tmp_path / "auth.log"
    log.write_text(
        "".join(
            f"Mar  3 10:00:{i % 60:02d} pc-01 sshd[811]: Failed password for root from 203.0.113.{i % 250} "
            f"port {40000 + i} ssh2\n"
            for i in range(1200)
        )
    )
    for _ in range(2):  # sending the same file twice stores it once (ids from path + offset)
        result = runner.invoke(app, ["send-file", str(log), "--config", str(cfg)])
        assert result.exit_code == 0, result.output
        assert "events delivered: 1200" in result.output
    assert collector.count() == 1200
    assert not any((tmp_path / "agent" / "oneshot").iterdir())  # the private spool is cleaned up


def test_send_file_unknown_format_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    result = runner.invoke(app, ["send-file", str(log), "--format", "klingon", "--config", str(config_file(tmp_path))])
    assert result.exit_code == 2


def test_no_wait_leaves_events_for_the_running_agent(collector: Collector, tmp_path: Path) -> None:
    from agent.runtime import Agent
    from tests.agent.support import wait_until

    enroll(collector.url, collector.token(), tmp_path / "agent", ca_fingerprint=collector.fingerprint)
    log = tmp_path / "app.log"
    log.write_text("".join(f'{{"message": "line {i}"}}\n' for i in range(50)))
    cfg_path = config_file(tmp_path)  # no collector_url: spool only (the URL comes from enrolment)
    collector.stop()
    result = runner.invoke(app, ["send-file", str(log), "--no-wait", "--config", str(cfg_path)])
    assert result.exit_code == 0, result.output
    assert "50 events spooled" in result.output
    collector.restart()
    import threading

    agent = Agent(agent_config(tmp_path, sources=[]))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: collector.count() >= 50, timeout=20)
    finally:
        stop.set()
        thread.join(30)
    assert not any((tmp_path / "agent" / "oneshot").iterdir())


@pytest.mark.skipif(not (SHARED / "pcaps").is_dir(), reason="shared pcaps not present")
def test_replay_pcap_into_the_collector(collector: Collector, tmp_path: Path) -> None:
    pytest.importorskip("agent.flows", reason="the flow meter (agent/flows) is needed")
    enroll(collector.url, collector.token(), tmp_path / "agent", ca_fingerprint=collector.fingerprint)
    pcap = SHARED / "pcaps" / "ssh-guess.pcap"
    result = runner.invoke(app, ["replay-pcap", str(pcap), "--config", str(config_file(tmp_path, collector.url))])
    assert result.exit_code == 0, result.output
    from collector.store.base import Query, Term

    flows = collector.store.count(Query((Term("event.dataset", "network_traffic.flow"),)))
    assert flows > 0
    assert f"events: {collector.count()} delivered" in result.output


@pytest.mark.skipif(not (SHARED / "evtx-attack-samples").is_dir(), reason="shared EVTX samples not present")
def test_import_evtx_into_the_collector(collector: Collector, tmp_path: Path) -> None:
    pytest.importorskip("agent.windows.evtx_file", reason="the EVTX reader (agent/windows) is needed")
    enroll(collector.url, collector.token(), tmp_path / "agent", ca_fingerprint=collector.fingerprint)
    evtx = next((SHARED / "evtx-attack-samples").rglob("*.evtx"))
    result = runner.invoke(app, ["import-evtx", str(evtx), "--config", str(config_file(tmp_path, collector.url))])
    assert result.exit_code == 0, result.output
    assert "records:" in result.output and "failed:" in result.output
    assert collector.count() > 0


def test_install_writes_the_unit_below_root(tmp_path: Path) -> None:
    result = runner.invoke(app, ["install", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "etc/systemd/system/soc-agent.service").read_text()
    assert "ExecStart=" in unit and "agent run --config /etc/soc/agent.toml" in unit
    assert "/usr/local/bin/soc agent" not in unit  # replaced by this host's soc
    starter = tmp_path / "etc/soc/agent.toml"
    assert 'data_dir = "/var/lib/soc-agent"' in starter.read_text()
    from agent.config import load_agent_config

    assert load_agent_config(starter).data_dir == Path("/var/lib/soc-agent")  # the starter file is valid
    result = runner.invoke(app, ["uninstall", "--root", str(tmp_path)])
    assert result.exit_code == 0
    assert not (tmp_path / "etc/systemd/system/soc-agent.service").exists()


def test_unit_is_hardened() -> None:
    unit = UNIT_SOURCE.read_text()
    for line in (
        "User=soc-agent",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/soc-agent",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
        "SupplementaryGroups=adm systemd-journal",
        "ProtectHome=yes",
        "PrivateTmp=yes",
    ):
        assert line in unit.splitlines(), line


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (apt: systemd)")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    from agent.cli import _render_unit

    soc = Path(sys.executable).with_name("soc")
    unit = tmp_path / "soc-agent.service"
    unit.write_text(_render_unit(UNIT_SOURCE, str(soc if soc.exists() else sys.executable)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "soc-agent.service" not in result.stderr, result.stderr

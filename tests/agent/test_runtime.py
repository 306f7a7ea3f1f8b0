"""The agent runtime: stamping, supervision of sources, live source changes, central policy, status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import AgentConfig, SourceEntry
from agent.enroll import enroll
from agent.plugins import PluginRegistry
from agent.policy import effective_config
from agent.runtime import Agent
from agent.status import read_status, status_path
from soc_common.config import ConfigError
from tests.agent.support import Collector, CountingSource, agent_config, wait_until


@pytest.fixture
def running(tmp_path: Path, plugins: PluginRegistry) -> Iterator[tuple[Agent, threading.Event]]:
    agents: list[tuple[Agent, threading.Event, threading.Thread]] = []

    def start(config: AgentConfig) -> Agent:
        agent = Agent(config, plugins=plugins)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        agents.append((agent, stop, thread))
        return agent

    yield start  # type: ignore[misc]
    for _, stop, thread in agents:
        stop.set()
        thread.join(30)


def spooled(agent: Agent) -> list[dict]:
    _, batch = agent.spool.read_batch(100000, 10**9)
    return batch


def test_events_are_stamped_and_spooled(tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    config = agent_config(
        tmp_path,
        host={"site": "hn-vp", "zone": "party-wan", "system_id": "sys-1"},
        sources=[{"type": "counting", "name": "c", "total": 30}],
    )
    agent = running(config)
    assert wait_until(lambda: agent.spool.pending_events >= 31)  # 30 + the "started" self-event
    events = spooled(agent)
    counted = [e for e in events if e["event"]["dataset"] == "test.counting"]
    assert len(counted) == 30
    first = counted[0]
    assert first["agent"]["type"] == "soc-agent" and first["agent"]["version"]
    assert first["host"]["name"] and first["host"]["id"] == agent.stamper.host_id
    assert first["soc"] == {"site": "hn-vp", "zone": "party-wan", "system_id": "sys-1"}
    started = [e for e in events if e["event"].get("action") == "started"]
    assert started and started[0]["event"]["dataset"] == "soc.agent"


def test_crashing_source_is_restarted_and_recorded(tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    config = agent_config(
        tmp_path,
        sources=[
            {"type": "counting", "name": "flaky", "total": 40, "fail_after": 20, "prefix": "f"},
            {"type": "counting", "name": "steady", "total": 40, "prefix": "s"},
        ],
    )
    agent = running(config)
    assert wait_until(lambda: "flaky" in agent.runners and agent.runners["flaky"].restarts >= 1, timeout=10)
    assert wait_until(lambda: agent.runners["flaky"].events >= 60, timeout=10)  # 20 before + 40 after restart
    status = {s["name"]: s for s in agent.status()["sources"]}
    assert "simulated crash" in status["flaky"]["last_error"]
    assert wait_until(lambda: agent.runners["steady"].events == 40)
    assert status["steady"]["restarts"] == 0
    errors = [e for e in spooled(agent) if e["event"].get("action") == "source_error"]
    assert errors and errors[0]["soc"]["agent"]["source"]["name"] == "flaky"


def test_source_changes_apply_without_restart(tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    config = agent_config(
        tmp_path,
        sources=[
            {"type": "counting", "name": "keep", "total": 5, "prefix": "k"},
            {"type": "counting", "name": "change", "total": 5, "prefix": "c"},
            {"type": "counting", "name": "remove", "total": 5, "prefix": "r"},
        ],
    )
    agent = running(config)
    assert wait_until(lambda: len(agent.runners) == 3 and all(r.events == 5 for r in agent.runners.values()))
    keep, change, remove = (agent.runners[n] for n in ("keep", "change", "remove"))
    agent.apply_sources(
        [
            SourceEntry.model_validate({"type": "counting", "name": "keep", "total": 5, "prefix": "k"}),
            SourceEntry.model_validate({"type": "counting", "name": "change", "total": 7, "prefix": "c"}),
            SourceEntry.model_validate({"type": "counting", "name": "new", "total": 3, "prefix": "n"}),
        ]
    )
    assert agent.runners["keep"] is keep and keep.running
    assert agent.runners["change"] is not change and not change.running
    assert "remove" not in agent.runners and not remove.running
    assert wait_until(lambda: agent.runners["new"].events == 3 and agent.runners["change"].events == 7)


def test_status_file_reports_sources_spool_and_shipping(tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    config = agent_config(tmp_path, sources=[{"type": "counting", "name": "c", "total": 10}])
    agent = running(config)
    path = status_path(config.data_dir)
    assert wait_until(lambda: (read_status(path) or {}).get("spool", {}).get("pending_events", 0) >= 11)
    status = read_status(path)
    assert status is not None
    assert status["state"] == "running" and status["sources"][0]["name"] == "c"
    assert status["shipping"]["acked"] == 0 and status["agent_id"] is None
    assert agent.state == "running"


def test_real_file_source_through_the_runtime(tmp_path: Path) -> None:
    pytest.importorskip("agent.sources.files", reason="the file source (agent/sources/files.py) is needed")
    log = tmp_path / "auth.log"
    log.write_text(
        "Mar  3 10:00:01 pc-01 sshd[811]: Failed password for root from 203.0.113.9 port 52113 ssh2\n"
        "Mar  3 10:00:05 pc-01 sshd[811]: Accepted password for alice from 203.0.113.9 port 52114 ssh2\n"
    )
    config = agent_config(
        tmp_path, sources=[{"type": "files", "name": "auth", "paths": [str(log)], "start_at": "beginning"}]
    )
    agent = Agent(config)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: agent.runners.get("auth") is not None and agent.runners["auth"].events >= 2)
        with log.open("a") as fh:
            fh.write("Mar  3 10:01:00 pc-01 sudo:    alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id\n")
        assert wait_until(lambda: agent.runners["auth"].events >= 3)
    finally:
        stop.set()
        thread.join(30)
    reopened = Agent(config)  # the spool survives the restart
    try:
        _, batch = reopened.spool.read_batch(1000, 10**9)
        auth = [e for e in batch if e["event"]["dataset"] == "system.auth"]
        assert len(auth) == 3
        assert {e.get("user", {}).get("name") for e in auth} >= {"root", "alice"}
        assert all(e["agent"]["type"] == "soc-agent" and e["event"]["id"] for e in auth)
    finally:
        reopened.spool.close()


def test_policy_merge_central_wins_unless_local_override(tmp_path: Path, plugins: PluginRegistry) -> None:
    local = AgentConfig.model_validate(
        {"data_dir": str(tmp_path), "shipping": {"eps_cap": 100}, "host": {"site": "local"}}
    )
    central = {
        "shipping": {"eps_cap": 500, "gzip": False},
        "host": {"site": "central"},
        "collector_url": "https://evil.example:8443",
        "data_dir": "/tmp/elsewhere",
    }
    merged = effective_config(local, central, "v1", plugins)
    assert merged.shipping.eps_cap == 500 and not merged.shipping.gzip and merged.host.site == "central"
    assert merged.collector_url == "" and merged.data_dir == tmp_path  # never taken from a policy
    local.policy.allow_local_override = True
    local = AgentConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "shipping": {"eps_cap": 100},
            "host": {"site": "local"},
            "policy": {"allow_local_override": True},
        }
    )
    merged = effective_config(local, central, "v1", plugins)
    assert merged.shipping.eps_cap == 100 and not merged.shipping.gzip and merged.host.site == "local"
    with pytest.raises(ConfigError, match=r"central policy v2: key 'sources\[0\]\.total'"):
        effective_config(local, {"sources": [{"type": "counting", "total": -1}]}, "v2", plugins)


def test_central_policy_applies_sources_live(collector: Collector, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    enroll(collector.url, collector.token(), tmp_path / "agent", ca_fingerprint=collector.fingerprint)
    policy_dir = Path(collector.server.config.policy_dir)
    policy_dir.mkdir(parents=True, exist_ok=True)
    config = agent_config(tmp_path, collector_url=collector.url, sources=[])
    agent = running(config)
    assert wait_until(lambda: agent.status()["policy"]["version"] is not None or agent.runners == {}, timeout=5)
    (policy_dir / "default.toml").write_text('[[sources]]\ntype = "counting"\nname = "central"\ntotal = 12\n')
    assert wait_until(lambda: "central" in agent.runners and agent.runners["central"].events == 12, timeout=10)
    version = agent.policy.version if agent.policy else None
    assert version
    # a bad policy is refused and the running sources stay as they are
    time.sleep(0.05)
    (policy_dir / "default.toml").write_text('[[sources]]\ntype = "counting"\nname = "central"\ntotal = -3\n')
    assert wait_until(lambda: agent.policy_error is not None, timeout=10)
    assert agent.runners["central"].running
    assert "sources[0].total" in json.dumps(agent.status()["policy"])
    assert wait_until(lambda: collector.count() >= 12, timeout=10)


def test_counting_source_is_ours() -> None:
    assert CountingSource.type == "counting"

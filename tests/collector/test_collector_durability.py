"""kill -9 in the middle of shipping: every acknowledged event is stored exactly once after a restart."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collector.ingest.registry import Registry
from collector.store.base import Query
from collector.store.sqlite import SqliteEventStore
from tests.collector.ingest_harness import Agent, post_events, sample_events

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Endpoint:
    """The two things the test agent needs to know about a collector."""

    url: str
    ca_file: Path


def start_collector(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], ca_file: Path, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"collector exited: {log.read_text()[-2000:]}")
        if ca_file.exists():
            try:
                ctx = ssl.create_default_context(cafile=str(ca_file))
                if httpx.get(f"{url}/health", verify=ctx, timeout=2).status_code == 200:
                    return
            except (httpx.HTTPError, ssl.SSLError, OSError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"collector not healthy: {log.read_text()[-2000:]}")


def test_kill_9_mid_stream_loses_no_acknowledged_event(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    config = tmp_path / "collector.toml"
    config.write_text(
        f'data_dir = "{data}"\n[ingest]\nport = {port}\n[detection]\nenabled = false\n'
        "[metrics]\nenabled = false\n[retention]\nenabled = false\n"
    )
    log = tmp_path / "collector.log"
    url = f"https://127.0.0.1:{port}"
    ca_file = data / "collector" / "ca" / "ca.crt"
    proc = start_collector(config, log)
    try:
        wait_healthy(url, proc, ca_file, log)
        registry = Registry(data / "collector" / "state.db")
        token, _ = registry.create_token(site="hn", uses=1, ttl_seconds=600)
        registry.close()
        agent = Agent(Endpoint(url, ca_file), tmp_path / "agent", "pc-kill")  # type: ignore[arg-type]
        assert agent.enroll(token).status_code == 200

        batches = [sample_events(200, f"b{k}") for k in range(60)]
        acked: set[int] = set()
        killed = threading.Event()

        def killer() -> None:
            while len(acked) < 5:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()

        threading.Thread(target=killer, daemon=True).start()
        with agent.client() as client:
            for k, batch in enumerate(batches):
                try:
                    resp = post_events(client, url, batch, compress=k % 2 == 0)
                except httpx.HTTPError:
                    break
                if resp.status_code == 200:
                    acked.add(k)
        assert killed.wait(10), "the collector was never killed"
        proc.wait(10)
        assert acked, "nothing was acknowledged before the kill"
        assert len(acked) < len(batches), "the kill came too late to test anything"

        # Restart and re-send what was not acknowledged (like the agent's spool would).
        proc = start_collector(config, log)
        wait_healthy(url, proc, ca_file, log)
        with agent.client() as client:
            for k, batch in enumerate(batches):
                if k not in acked:
                    resp = post_events(client, url, batch)
                    assert resp.status_code == 200, resp.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    store = SqliteEventStore(data / "events.db")
    try:
        all_ids = [e["event"]["id"] for b in batches for e in b]
        assert store.count(Query()) == len(all_ids)  # each exactly once
        acked_ids = [e["event"]["id"] for k in acked for e in batches[k]]
        assert len(store.get(acked_ids)) == len(acked_ids)
    finally:
        store.close()

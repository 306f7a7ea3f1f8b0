"""The ``flows`` agent source: settings, replay through ``emit``, live capture on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.flows.capture import CaptureError, LiveCapture
from agent.flows.meter import FlowMeter
from agent.flows.source import FlowSource, FlowSourceSettings
from agent.plugins import registry
from flows.craft import SCENARIO_PCAPS, flows, handshake_session, write_pcap
from soc_common.ecs import Event


class Collect:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def __call__(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [e for batch in self.batches for e in batch]


def test_settings_need_an_interface_or_files() -> None:
    with pytest.raises(ValidationError, match="interface"):
        FlowSourceSettings()
    with pytest.raises(ValidationError):
        FlowSourceSettings(pcap_files=["x.pcap"], idle_timeout=0)
    with pytest.raises(ValidationError):
        FlowSourceSettings.model_validate({"pcap_files": ["x.pcap"], "unknown": 1})


def test_plugin_registry_builds_the_source(tmp_path: Path) -> None:
    source = registry.create("flows", "net", {"pcap_files": [str(tmp_path / "a.pcap")], "idle_timeout": 30})
    assert isinstance(source, FlowSource) and source.type == "flows"
    assert source.settings.idle_timeout == 30


def test_replay_emits_batches_and_reports_damaged_files(tmp_path: Path) -> None:
    good = SCENARIO_PCAPS / "port-scan.pcap"
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes(write_pcap(tmp_path / "w.pcap", handshake_session()).read_bytes()[:-30])
    settings = FlowSourceSettings(pcap_files=[str(good), str(damaged), str(tmp_path / "absent.pcap")], batch_size=100)
    source = FlowSource("net", settings, host={"id": "sensor-1"})
    out = Collect()
    source.run(out, threading.Event())
    assert max(len(b) for b in out.batches) <= 100
    assert len(flows(out.events)) == 1024 + 1  # the scan, plus the flow before the damage
    assert source.errors == 2 and "absent.pcap" in (source.last_error or "")
    assert source.status()["files_done"] == 3
    assert all(e["host"] == {"id": "sensor-1"} for e in out.events)


def test_replay_stops_when_asked() -> None:
    settings = FlowSourceSettings(pcap_files=[str(SCENARIO_PCAPS / "port-scan.pcap")] * 3)
    stop = threading.Event()
    stop.set()
    out = Collect()
    FlowSource("net", settings).run(out, stop)
    assert out.events == []


def _open_loopback(bpf: str) -> LiveCapture:
    capture = LiveCapture("lo", bpf)
    try:
        capture.open()
    except CaptureError as exc:
        pytest.skip(f"live capture on loopback is not permitted here (needs root or CAP_NET_RAW): {exc}")
    return capture


def test_live_capture_on_loopback_meters_real_traffic() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    capture = _open_loopback(f"udp and port {port}")
    meter = FlowMeter(idle_timeout=60)
    out = Collect()
    stop = threading.Event()
    worker = threading.Thread(target=capture.run, args=(meter, out, stop), kwargs={"expire_every": 0.1})
    worker.start()
    try:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(10):
            sender.sendto(b"p" * 100, ("127.0.0.1", port))
        deadline = time.monotonic() + 5
        while capture.frames < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=5)
        capture.close()
        receiver.close()
    (flow,) = flows(out.events)
    assert flow["destination"]["port"] == port
    assert flow["source"]["packets"] == 10 and flow["source"]["bytes"] == 10 * 128  # each frame once
    assert flow["event"]["reason"] == "end_of_input"


def test_live_capture_bad_interface_is_a_capture_error() -> None:
    with pytest.raises(CaptureError):
        LiveCapture("no-such-if0").open()


def test_live_source_retries_a_failing_interface() -> None:
    source = FlowSource("net", FlowSourceSettings(interface="no-such-if0", retry_interval=0.05))
    stop = threading.Event()
    worker = threading.Thread(target=source.run, args=(Collect(), stop))
    worker.start()
    time.sleep(0.3)
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive() and source.errors >= 2 and "no-such-if0" in (source.last_error or "")

"""Host inventory snapshots: shape, change detection, protection state."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from agent.sources.inventory import (
    InventorySettings,
    InventorySource,
    clamav_state,
    defender_state_from_json,
)


def test_snapshot_describes_this_host(tmp_path: Path) -> None:
    source = InventorySource("inv", InventorySettings(clamav_db_dir=tmp_path))
    event, _ = source.snapshot()
    assert event["event"]["dataset"] == "soc.inventory" and event["event"]["kind"] == "state"
    host = event["host"]
    assert host["hostname"] == socket.gethostname()
    assert host["os"]["platform"] and host["os"]["kernel"]
    assert host["uptime"] > 0
    inv = event["soc"]["inventory"]
    assert inv["memory"]["total"] > 0 and 0 <= inv["memory"]["usage"] <= 1
    assert inv["disks"] and all("mount" in d for d in inv["disks"])
    assert isinstance(inv["listening"], list) and isinstance(inv["users"], list)
    assert set(inv["protection"]) >= {"product", "enabled"}


def test_listening_port_with_owning_process(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        event, _ = InventorySource("inv", InventorySettings(clamav_db_dir=tmp_path)).snapshot()
    mine = [p for p in event["soc"]["inventory"]["listening"] if p["port"] == port]
    assert mine and mine[0]["transport"] == "tcp"
    assert mine[0]["process"].get("pid") == os.getpid()


def test_new_listening_port_triggers_an_early_snapshot(tmp_path: Path) -> None:
    settings = InventorySettings(interval=3600, check_interval=0.1, connections=False, clamav_db_dir=tmp_path)
    source = InventorySource("inv", settings)
    emitted: list[dict] = []
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(emitted.extend, stop), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not emitted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emitted[0]["soc"]["inventory"]["trigger"] == "interval"
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            while len(emitted) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert len(emitted) >= 2
    assert emitted[1]["soc"]["inventory"]["trigger"] == "change"
    assert isinstance(emitted[1]["soc"]["inventory"]["new_processes"], list)
    assert source.status()["snapshots"] == len(emitted)


def test_clamav_signature_age(tmp_path: Path) -> None:
    daily = tmp_path / "daily.cld"
    daily.write_bytes(b"x")
    three_days_ago = time.time() - 3 * 86400
    os.utime(daily, (three_days_ago, three_days_ago))
    state = clamav_state(tmp_path, {"clamd", "bash"})
    assert state is not None
    assert state["product"] == "ClamAV" and state["running"] and state["enabled"]
    assert 2.9 < state["signature_age_days"] < 3.1
    assert clamav_state(tmp_path, set())["running"] is False  # type: ignore[index]


def test_defender_status_parsing() -> None:
    text = (
        '{"AntivirusEnabled": true, "RealTimeProtectionEnabled": false, "AMServiceEnabled": true,'
        ' "AntivirusSignatureAge": 9, "AntivirusSignatureVersion": "1.401.1"}'
    )
    state = defender_state_from_json(text)
    assert state is not None
    assert state["enabled"] is False and state["real_time"] is False and state["signature_age_days"] == 9
    assert defender_state_from_json("not json") is None
    assert defender_state_from_json("[]") is None

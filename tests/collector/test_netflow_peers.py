"""NetFlow receiver against real peers: softflowd exports a capture, nfcapd/nfdump count the same.

softflowd reading a file is deterministic, so it is run twice on the same capture: once into our
receiver and once into nfcapd. Both must see the same number of flows and the same byte total.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from peers import OWN_PCAPS, Collect, free_port, nfcapd, nfdump_totals, pcap, softflowd_export, wait_for

from collector.config import NetflowSettings
from collector.netflow.server import NetflowReceiver

pytestmark = pytest.mark.peers

CAPTURES = ["dhcp-flood-zeek.pcap", "ssh-zeek.pcap", "nmap-vsn.pcap", "smb3-multichannel.pcap"]
OWN = sorted(p.name for p in OWN_PCAPS.glob("*.pcap"))


def settled(receiver: NetflowReceiver, quiet: float = 0.3) -> None:
    """Wait until the receiver has read and decoded everything softflowd sent (nothing moves for ``quiet`` s)."""
    last: list[Any] = [None, time.monotonic()]

    def still() -> bool:
        s = receiver.stats()
        key = (s["packets_received"], s["records"], s["packets_queued"], s["queued"])
        if key != last[0]:
            last[0], last[1] = key, time.monotonic()
        return s["packets_received"] > 0 and s["packets_queued"] == 0 and time.monotonic() - last[1] > quiet

    wait_for(still, 15)


def _receive(capture: Path, version: int, tmp_path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    sink = Collect()
    receiver = NetflowReceiver(NetflowSettings(enabled=True, port=0, flush_interval=0.05), sink)
    port = receiver.start()
    try:
        softflowd_export(capture, port, version, tmp_path)
        settled(receiver)
        expected = receiver.stats()["records"]
        wait_for(lambda: len(sink.events) >= expected, 10)
    finally:
        receiver.stop()
    return sink.events, receiver.stats()


@pytest.mark.parametrize("version", [5, 9, 10])
@pytest.mark.parametrize("name", CAPTURES + [f"own:{n}" for n in OWN])
def test_flow_count_and_bytes_match_nfdump(name: str, version: int, tmp_path: Path) -> None:
    capture = OWN_PCAPS / name[4:] if name.startswith("own:") else pcap(name)
    events, stats = _receive(capture, version, tmp_path)
    port = free_port()
    with nfcapd(tmp_path, port) as flows:
        softflowd_export(capture, port, version, tmp_path)
        wait_for(lambda: False, 0.5)  # nfcapd has no "caught up" signal; give it the datagrams' time
    nf_count, nf_bytes = nfdump_totals(flows)
    assert nf_count > 0, "softflowd exported nothing for this capture"
    assert len(events) == nf_count
    assert sum(e["network"]["bytes"] for e in events) == nf_bytes
    assert stats["malformed_packets"] == 0
    assert stats["missing_v5_flows"] == stats["missing_v9_packets"] == stats["missing_ipfix_records"] == 0
    assert stats["kernel_drops"] == 0
    assert len({e["event"]["id"] for e in events}) == len(events)
    sample = events[0]
    assert sample["event"]["dataset"] == "netflow.flow"
    assert sample["observer"]["ip"] == "127.0.0.1"
    assert sample["source"]["ip"] and sample["destination"]["ip"]
    assert sample["event"]["start"] <= sample["event"]["end"]


def test_ipfix_options_keep_system_init_time(tmp_path: Path) -> None:
    """softflowd's IPFIX flows carry uptime offsets; the options record's init time anchors them."""
    events, stats = _receive(pcap("dhcp-flood-zeek.pcap"), 10, tmp_path)
    assert stats["options_records"] >= 1
    exporter = stats["exporters"]["127.0.0.1/0"]
    assert "system_init_ms" in exporter
    v9_events, _ = _receive(pcap("dhcp-flood-zeek.pcap"), 9, tmp_path)
    # Same capture, same flows: IPFIX and v9 must place them on the same day.
    assert events[0]["event"]["start"][:10] == v9_events[0]["event"]["start"][:10]

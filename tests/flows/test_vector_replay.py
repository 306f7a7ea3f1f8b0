"""The numpy replay path (agent.flows.vector) must give the per-packet path's flow and metadata
records and counters exactly, on the real captures and on the cases its rules are about: timeouts
across chunk and scan boundaries, FIN/RST and SYN after close, VLAN, IPv6, other IP protocols,
fragments sharing a flow, time running backwards, a full flow table, damaged files.

Events are compared as multisets: within one chunk the numpy path may queue them in another order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Packet, Raw

from agent.flows import FlowMeter, meter_pcap
from agent.flows.pcap import PcapError, pump
from tests.flows.craft import T0, A, B, at, handshake_session, tcp, write_pcap
from tests.flows.test_bulk_replay import SHARED, eth, mixed_packets

pytest.importorskip("numpy", reason="numpy (the 'flows' extra) is not installed: no vectorised path to test")

from agent.flows import vector  # importable without numpy; using it needs numpy (checked above)

Replay = tuple[list[str], dict[str, int], str | None]


def replay(path: Path, *, vectorised: bool, batch: int = 64, min_segment: int = 1, **kwargs: Any) -> Replay:
    """Sorted events (as JSON), counters and the error of one replay; ``batch`` records per chunk."""
    meter = FlowMeter(**kwargs)
    bulk = vector.VectorReplay(meter, min_segment=min_segment).feed_pcap if vectorised else None
    events: list[Any] = []
    error = None
    try:
        for _ in pump(path, meter.feed_at, batch=batch, bulk=bulk):
            events.extend(meter.drain())
    except PcapError as exc:
        error = str(exc)
    events.extend(meter.flush())
    return sorted(json.dumps(e, sort_keys=True) for e in events), meter.stats(), error


def assert_same(path: Path, *, batches: tuple[int, ...] = (1, 7, 64, 4096), **kwargs: Any) -> Replay:
    expected = replay(path, vectorised=False, **kwargs)
    for batch in batches:
        for min_segment in (1, 3):
            got = replay(path, vectorised=True, batch=batch, min_segment=min_segment, **kwargs)
            assert got == expected, f"batch {batch}, min_segment {min_segment}"
    return expected


@pytest.mark.skipif(not SHARED, reason="shared captures not present (../shared/data/pcaps)")
@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_real_captures_same_records_as_per_packet(path: Path) -> None:
    events, stats, _ = assert_same(path, batches=(64, 4096), active_timeout=30, idle_timeout=10, close_linger=1)
    assert events and stats["packets"] > 0
    # the default timeouts and one chunk for the whole file
    assert replay(path, vectorised=True, batch=1 << 20) == replay(path, vectorised=False)


def test_every_shape_vlan_ipv6_gre_fragments_options(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "mixed.pcap", mixed_packets())
    events, _, _ = assert_same(path, idle_timeout=30)
    assert_same(path, idle_timeout=30, metadata=False)
    flows = [json.loads(e) for e in events if '"network_traffic.flow"' in e]
    assert {f["network"]["transport"] for f in flows} >= {"tcp", "udp", "gre", "icmp"}


def long_flows() -> list[Packet]:
    """Flows whose records end by idle gap, active deadline, FIN, RST, SYN after close and EOF."""
    packets: list[Packet] = []
    t = T0
    for i in range(40):  # a long transfer: 0.5 s apart, so active timeouts cut it, orientation kept
        packets.append(tcp(A, B, 40000, 80, "PA", t + i * 0.5, b"d" * 50))
        packets.append(tcp(B, A, 80, 40000, "A", t + i * 0.5 + 0.01))
    packets += [tcp(A, B, 40001, 22, "PA", t + k, b"s") for k in (0.2, 0.4, 15.0, 15.2, 40.0)]  # idle gaps
    packets += handshake_session(t + 1, sport=40002)
    packets += [tcp(A, B, 40002, 80, "A", t + 1.75), tcp(A, B, 40002, 80, "S", t + 1.8)]  # late ACK, SYN reuse
    packets += [tcp(A, B, 40003, 443, "S", t + 2), tcp(B, A, 443, 40003, "R", t + 2.1)]
    packets += [tcp(A, B, 40003, 443, "A", t + 2.2), tcp(A, B, 40003, 443, "A", t + 5.0)]  # after RST
    packets += [
        at(eth() / IP(src=A, dst=B) / UDP(sport=5000 + k % 3, dport=6000) / Raw(b"u" * 20), t + k * 0.7)
        for k in range(30)
    ]
    packets.sort(key=lambda p: float(p.time))
    return packets


@pytest.mark.parametrize("timeouts", [(300, 60, 2), (3, 1.2, 0.5), (7, 2, 0)])
def test_timeouts_fin_rst_across_chunks_and_scans(tmp_path: Path, timeouts: tuple[float, float, float]) -> None:
    active, idle, linger = timeouts
    path = write_pcap(tmp_path / "long.pcap", long_flows())
    events, _, _ = assert_same(path, active_timeout=active, idle_timeout=idle, close_linger=linger)
    reasons = {json.loads(e)["event"].get("reason") for e in events}
    if timeouts == (3, 1.2, 0.5):
        assert {"active_timeout", "idle_timeout", "closed", "end_of_input"} <= reasons


def test_nanosecond_timestamps(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "nano.pcap", long_flows(), nano=True)
    assert_same(path, batches=(7, 4096), active_timeout=3, idle_timeout=1.2, close_linger=0.5)


def test_time_running_backwards(tmp_path: Path) -> None:
    packets = long_flows()
    for i in range(0, len(packets) - 1, 5):  # swap neighbours: time steps back every few packets
        packets[i], packets[i + 1] = packets[i + 1], packets[i]
    packets.append(tcp(A, B, 40001, 22, "PA", T0 - 30, b"old"))  # far in the past
    packets += [tcp(A, B, 40001, 22, "PA", T0 + 60 + k, b"new") for k in range(5)]
    path = write_pcap(tmp_path / "backwards.pcap", packets)
    assert_same(path, active_timeout=3, idle_timeout=1.2, close_linger=0.5)
    # a scan at +20 s ends the flow; its next packet is stamped +5 s: a new flow, not one 5 s long
    stepped = [tcp(A, B, 1, 2, "A", T0), tcp(B, A, 3, 4, "A", T0 + 20), tcp(A, B, 1, 2, "A", T0 + 5)]
    events, _, _ = assert_same(write_pcap(tmp_path / "stepped.pcap", stepped * 3), idle_timeout=10)
    assert sum('"idle_timeout"' in e for e in events) == 1


def test_flows_sharing_addresses_with_fragments_and_options(tmp_path: Path) -> None:
    """Frames numpy leaves to decode() (first fragments, IP options) share the flows it meters."""
    packets = []
    for k in range(20):
        t = T0 + k * 0.1
        packets.append(at(eth() / IP(src=A, dst=B) / UDP(sport=53000, dport=9) / Raw(b"a" * 30), t))
        if k % 4 == 0:
            frag = IP(src=A, dst=B, flags="MF", id=k) / UDP(sport=53000, dport=9) / Raw(b"f" * 40)
            packets.append(at(eth() / frag, t + 0.01))
        if k % 5 == 0:
            opts = IP(src=B, dst=A, options=b"\x01\x01\x01\x00") / TCP(sport=80, dport=41000, flags="A")
            packets.append(at(eth() / opts, t + 0.02))
        packets.append(tcp(A, B, 41000, 80, "A", t + 0.03))
    path = write_pcap(tmp_path / "shared.pcap", packets)
    _, stats, _ = assert_same(path, idle_timeout=0.25, active_timeout=1)
    assert stats["fragments"] == 5


def test_full_flow_table_evicts_as_per_packet(tmp_path: Path) -> None:
    packets = [
        at(eth() / IP(src=A, dst=B) / UDP(sport=1000 + k % 50, dport=53) / Raw(b"\x00" * 12), T0 + k * 0.01)
        for k in range(400)
    ]
    _, stats, _ = assert_same(write_pcap(tmp_path / "many.pcap", packets), max_flows=20, metadata=False)
    assert stats["evicted"] > 0


def test_damaged_files_stop_where_the_reader_reports(tmp_path: Path) -> None:
    whole = write_pcap(tmp_path / "whole.pcap", mixed_packets()).read_bytes()
    for cut in (7, 15, 30):
        damaged = tmp_path / f"cut{cut}.pcap"
        damaged.write_bytes(whole[:-cut])
        _, _, error = assert_same(damaged)
        assert error is not None and "truncated" in error
    data = bytearray(whole)
    off = 24
    for _ in range(5):
        off += 16 + int.from_bytes(data[off + 8 : off + 12], "little")
    for caplen in (0x7FFFFFFF, 0x40001, len(data)):
        data[off + 8 : off + 12] = caplen.to_bytes(4, "little")
        bad = tmp_path / "bad.pcap"
        bad.write_bytes(bytes(data))
        _, stats, error = assert_same(bad)
        assert error is not None and "after 5 packets" in error
        assert stats["packets"] == 5


def test_meter_pcap_uses_numpy_and_falls_back_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pcap(tmp_path / "long.pcap", long_flows())

    def run(vectorised: bool) -> list[str]:
        meter = FlowMeter(idle_timeout=2)
        events = list(meter_pcap(path, meter, vectorised=vectorised)) + meter.flush()
        return sorted(json.dumps(e, sort_keys=True) for e in events)

    calls: list[int] = []
    real = vector.VectorReplay._chunk

    def counting(self: vector.VectorReplay, *args: Any) -> None:
        calls.append(1)
        real(self, *args)

    monkeypatch.setattr(vector.VectorReplay, "_chunk", counting)
    with_numpy = run(True)
    assert calls  # the numpy path ran
    assert with_numpy == run(False)
    monkeypatch.setattr(vector, "HAVE_NUMPY", False)
    assert vector.vector_bulk(FlowMeter()) is None
    calls.clear()
    assert run(True) == with_numpy and not calls


def test_same_endpoint_both_ends_is_one_flow_on_both_paths(tmp_path: Path) -> None:
    """A LAND-style flood (source = destination, same port) is metered, expired and flushed."""
    packets = [tcp(A, A, 139, 139, "S", T0 + k * 0.5) for k in range(30)]
    events, stats, _ = assert_same(write_pcap(tmp_path / "land.pcap", packets), idle_timeout=5)
    flows = [json.loads(e) for e in events]
    assert sum(f["source"]["packets"] for f in flows) == stats["packets"] == 30

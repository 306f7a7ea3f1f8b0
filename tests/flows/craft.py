"""Helpers that craft small captures for the flow tests (scapy builds, our code reads)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, PcapWriter

from agent.flows import FlowMeter
from agent.flows.meter import FlowMeter as _Meter
from agent.flows.pcap import pump
from soc_common.ecs import Event

REPO = Path(__file__).resolve().parents[2]
SHARED_PCAPS = REPO / ".." / "shared" / "data" / "pcaps"
SCENARIO_PCAPS = REPO / "pcaps"
T0 = 1_700_000_000.0

A, B = "10.1.1.1", "10.2.2.2"


def write_pcap(path: Path, packets: Sequence[Packet], *, nano: bool = False, big_endian: bool = False) -> Path:
    with PcapWriter(str(path), nano=nano, endianness=">" if big_endian else "<", sync=True) as writer:
        for pkt in packets:
            writer.write(pkt)
    return path


def write_pcapng(path: Path, packets: Sequence[Packet]) -> Path:
    with PcapNgWriter(str(path)) as writer:
        for pkt in packets:
            writer.write(pkt)
    return path


def at(pkt: Packet, ts: float) -> Packet:
    pkt.time = ts
    return pkt


def tcp(src: str, dst: str, sport: int, dport: int, flags: str, ts: float, payload: bytes = b"") -> Packet:
    pkt = Ether(dst="02:00:00:00:00:02") / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)
    if payload:
        pkt = pkt / Raw(payload)
    return at(pkt, ts)


def handshake_session(t: float = T0, sport: int = 40000, data: bytes = b"x" * 100) -> list[Packet]:
    """A→B:80: SYN, SYN/ACK, ACK, data, ACK, FIN both ways, last ACK (9 packets)."""
    return [
        tcp(A, B, sport, 80, "S", t),
        tcp(B, A, 80, sport, "SA", t + 0.1),
        tcp(A, B, sport, 80, "A", t + 0.2),
        tcp(A, B, sport, 80, "PA", t + 0.3, data),
        tcp(B, A, 80, sport, "A", t + 0.4),
        tcp(A, B, sport, 80, "FA", t + 0.5),
        tcp(B, A, 80, sport, "FA", t + 0.6),
        tcp(A, B, sport, 80, "A", t + 0.7),
    ]


def meter_packets(packets: Iterable[Packet], **kwargs: Any) -> tuple[_Meter, list[Event]]:
    """Feed scapy packets straight into a meter (as live capture does); flush at the end."""
    meter = FlowMeter(**kwargs)
    events: list[Event] = []
    for pkt in packets:
        meter.feed(float(pkt.time), 1, bytes(pkt))
        events.extend(meter.drain())
    events.extend(meter.flush())
    return meter, events


def flows(events: Iterable[Event]) -> list[Event]:
    return [e for e in events if e["event"]["dataset"] == "network_traffic.flow"]


def of(events: Iterable[Event], dataset: str) -> list[Event]:
    return [e for e in events if e["event"]["dataset"] == dataset]


def count_packets(path: Path) -> int:
    """Packets in a capture as our reader counts them."""
    counts = list(pump(path, lambda *a: None, batch=1 << 30))
    return counts[-1] if counts else 0


def pcap_header(linktype: int, order: str = "<", magic: int = 0xA1B2C3D4) -> bytes:
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)


def pcap_record(ts: float, frame: bytes, order: str = "<") -> bytes:
    sec = int(ts)
    return struct.pack(order + "IIII", sec, round((ts - sec) * 1e6), len(frame), len(frame)) + frame

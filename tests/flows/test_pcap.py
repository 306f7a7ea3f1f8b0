"""The capture reader: classic pcap (both byte orders, micro/nanoseconds), pcapng, and damage."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agent.flows import events_from_pcap
from agent.flows.pcap import PcapError, iter_records, read_packets
from flows.craft import T0, handshake_session, pcap_header, pcap_record, write_pcap, write_pcapng


@pytest.mark.parametrize(("nano", "big_endian"), [(False, False), (True, False), (False, True), (True, True)])
def test_classic_pcap_variants_read_identically(tmp_path: Path, nano: bool, big_endian: bool) -> None:
    packets = handshake_session()
    path = write_pcap(tmp_path / "x.pcap", packets, nano=nano, big_endian=big_endian)
    got = list(read_packets(path))
    assert [frame for _, _, frame in got] == [bytes(p) for p in packets]
    assert {linktype for _, linktype, _ in got} == {1}
    assert [ts for ts, _, _ in got] == pytest.approx([float(p.time) for p in packets], abs=1e-6)


def test_pcapng_reads_like_pcap(tmp_path: Path) -> None:
    packets = handshake_session()
    ng = list(read_packets(write_pcapng(tmp_path / "x.pcapng", packets)))
    classic = list(read_packets(write_pcap(tmp_path / "x.pcap", packets)))
    assert [f for _, _, f in ng] == [f for _, _, f in classic]
    assert [ts for ts, _, _ in ng] == pytest.approx([ts for ts, _, _ in classic], abs=1e-6)


def _block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def _shb(order: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def _idb(linktype: int, tsresol: int | None = None, order: str = "<") -> bytes:
    body = struct.pack(order + "HHI", linktype, 0, 65535)
    if tsresol is not None:
        body += struct.pack(order + "HH", 9, 1) + bytes([tsresol, 0, 0, 0]) + struct.pack(order + "HH", 0, 0)
    return _block(1, body, order)


def _epb(if_id: int, ticks: int, frame: bytes, order: str = "<") -> bytes:
    body = struct.pack(order + "IIIII", if_id, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame
    return _block(6, body, order)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_per_interface_linktype_and_resolution(tmp_path: Path, order: str) -> None:
    eth = bytes(handshake_session()[0])
    raw_ip = eth[14:]
    data = _shb(order) + _idb(1, None, order) + _idb(101, 9, order)  # 2nd interface: nanoseconds
    data += _epb(0, int(T0 * 1e6), eth, order) + _epb(1, int(T0 * 1e9) + 5, raw_ip, order)
    data += _block(3, struct.pack(order + "I", len(eth)) + eth, order)  # simple packet block
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data)
    got = list(read_packets(path))
    assert [(lt, f) for _, lt, f in got] == [(1, eth), (101, raw_ip), (1, eth)]
    assert got[0][0] == pytest.approx(T0)
    assert got[1][0] == pytest.approx(T0 + 5e-9, abs=1e-6)
    assert got[2][0] == got[1][0]  # a simple packet block has no time of its own


def test_truncated_file_yields_good_packets_then_errors(tmp_path: Path) -> None:
    packets = handshake_session()
    whole = write_pcap(tmp_path / "whole.pcap", packets).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-30])  # the last record loses its tail
    seen = []
    with pytest.raises(PcapError, match=r"truncated at offset \d+ after 7 packets"):
        for record in read_packets(cut):
            seen.append(record)
    assert len(seen) == 7


def test_truncated_file_still_meters_everything_before_the_damage(tmp_path: Path) -> None:
    whole = write_pcap(tmp_path / "whole.pcap", handshake_session()).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-30])
    events = []
    with pytest.raises(PcapError):
        for event in events_from_pcap(cut):
            events.append(event)
    # the flow was flushed before the error propagated: 7 good packets counted
    assert sum(e["network"]["packets"] for e in events if e["event"]["dataset"] == "network_traffic.flow") == 7


def test_corrupt_record_length_is_an_error_after_good_packets(tmp_path: Path) -> None:
    frame = bytes(handshake_session()[0])
    bad = struct.pack("<IIII", int(T0), 0, 0x7FFFFFFF, 60)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(pcap_header(1) + pcap_record(T0, frame) + bad + frame)
    got = []
    with pytest.raises(PcapError, match="corrupt record"):
        for record in iter_records(path):
            got.append(record)
    assert len(got) == 1


def test_corrupt_pcapng_block_length(tmp_path: Path) -> None:
    frame = bytes(handshake_session()[0])
    path = tmp_path / "bad.pcapng"
    path.write_bytes(_shb() + _idb(1) + _epb(0, 1, frame) + struct.pack("<II", 6, 7) + b"\x00" * 16)
    with pytest.raises(PcapError, match="corrupt block length 7"):
        list(read_packets(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello world, not a capture", "not a pcap or pcapng"),
        (b"\xd4\xc3\xb2\xa1\x02", "truncated"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(PcapError, match=message):
        list(read_packets(path))


def test_missing_file_is_a_pcap_error(tmp_path: Path) -> None:
    with pytest.raises(PcapError, match="cannot read"):
        list(read_packets(tmp_path / "absent.pcap"))


def test_large_file_is_memory_mapped_and_read_fully(tmp_path: Path) -> None:
    packets = [p for i in range(300) for p in handshake_session(T0 + i * 10, 40000 + i)]
    path = write_pcap(tmp_path / "big.pcap", packets)
    assert path.stat().st_size > 65536  # the mmap path
    assert sum(1 for _ in iter_records(path)) == len(packets)

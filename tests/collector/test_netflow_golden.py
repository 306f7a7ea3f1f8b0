"""Differential test: the flow events built today are byte-for-byte those of the reference builder.

``fixtures/netflow_golden.jsonl.gz`` holds export datagrams and, for each, the events the original
(pre-compilation, generic per-field) builder produced from it. The datagrams are a seeded corpus of
v5, v9 and IPFIX packets with varied templates (IPv4/IPv6, odd field lengths, enterprise and
variable-length elements, options records, held sets, every time encoding, ICMP/GRE/SCTP, repeated
elements) plus softflowd's own export of the shared captures in all three versions. Key order is
compared too: the stored JSON documents must not change.

Regenerate (only when the event shape is meant to change, and say so in the commit):

    .venv/bin/python tests/collector/test_netflow_golden.py --write
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events
from collector.netflow.fields import ELEMENTS

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "netflow_golden.jsonl.gz"
SOFTFLOWD_CAPTURES = ["dhcp-flood-zeek.pcap", "ssh-zeek.pcap", "nmap-vsn.pcap", "smb3-multichannel.pcap"]
_NTP = 2_208_988_800
_T0_MS = 1_700_000_000_000


# -- building what the fixture records ---------------------------------------------------------------
def packet_events(decoder: FlowDecoder, exporter: str, packet: bytes, now: float) -> list[Any]:
    """What the receiver's worker makes of one datagram: the events, or the error that lost them."""
    result = decoder.decode(packet, exporter, now)
    try:
        return [e for batch in result.batches for e in batch_events(batch)]
    except Exception as exc:  # the receiver counts such a packet as a worker error
        return [{"error": type(exc).__name__}]


def load_fixture() -> Iterator[tuple[str, bytes, float, list[Any]]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            yield row["exporter"], base64.b64decode(row["packet"]), row["now"], row["events"]


# -- the seeded corpus -------------------------------------------------------------------------------
class Corpus:
    """Deterministic export packets exercising every branch of the flow-event builder."""

    def __init__(self, seed: int = 20261121) -> None:
        self.rnd = random.Random(seed)
        self.now = 1000.0
        self.out: list[tuple[str, bytes, float]] = []

    def emit(self, exporter: str, packet: bytes) -> None:
        self.now += 0.01
        self.out.append((exporter, packet, round(self.now, 3)))

    # values ------------------------------------------------------------------------------------
    def ip4(self) -> bytes:
        return bytes([self.rnd.choice([10, 192, 172, 8, 203]), self.rnd.randrange(256), 1, self.rnd.randrange(256)])

    def ip6(self) -> bytes:
        return b"\x20\x01\x0d\xb8" + bytes(self.rnd.randrange(256) for _ in range(12))

    def value(self, ie: int, length: int, base_ms: int) -> bytes:
        """Wire bytes of element ``ie`` at ``length``, plausible most of the time, odd sometimes."""
        r = self.rnd
        kind = ELEMENTS.get(ie, ("", None))[1]
        kind_name = kind.value if kind is not None else "u"
        if kind_name == "ip4" and length == 4:
            return self.ip4()
        if kind_name == "ip6" and length == 16:
            return self.ip6()
        if kind_name == "str":
            text = r.choice(["eth0", "Gi0/1", "uplink-WAN", "cổng-mạng", ""]).encode()
            return text[:length].ljust(length, b"\x00")
        if kind_name != "u" or length > 8 or length == 0:
            return bytes(r.randrange(256) for _ in range(length))
        top = (1 << (8 * length)) - 1
        number: int
        if ie == 4:
            number = r.choice([6, 6, 6, 17, 17, 1, 58, 132, 47, 0, 255, 300])
        elif ie in (7, 11):
            number = r.choice([0, 53, 80, 443, 1024 + r.randrange(60000), 65535, 70000])
        elif ie == 6:
            number = r.choice([0, 0x02, 0x12, 0x1B, 0x11, 0x18, 0x04, 0xFF, 0x1FF])
        elif ie == 60:
            number = r.choice([4, 4, 6, 5])
        elif ie in (152, 153):
            number = base_ms + (r.randrange(600_000) if ie == 153 else 0) - r.choice([0, 0, 5000])
        elif ie in (150, 151):
            number = base_ms // 1000 + (r.randrange(600) if ie == 151 else 0)
        elif ie in (154, 155, 156, 157):
            secs = base_ms // 1000 + (r.randrange(600) if ie in (155, 157) else 0)
            number = (secs + _NTP) << 32 | r.randrange(1 << 32)
        elif ie in (158, 159):
            number = r.randrange(100_000_000)
        elif ie in (21, 22):
            number = r.choice([3_590_000 + r.randrange(10_000), r.randrange(1 << 32), 3_600_500])
        elif ie in (32, 139):
            number = r.choice([0x0800, 0x0000, 0x0303, 0x0B00, 0x8000, 0x8100, 0x8700, 0x0D00, 0xFFFF + 1])
        elif ie in (10, 14):
            number = r.randrange(64)
        else:
            number = r.choice([0, 1, r.randrange(1 << 16), r.randrange(1 << 40), top])
        return (number & top).to_bytes(length, "big")

    # templates -------------------------------------------------------------------------------------
    def flow_fields(self, ipfix: bool) -> list[tuple[int, int, int]]:
        """(element, length, enterprise) of one random flow template."""
        r = self.rnd
        v6 = r.random() < 0.25
        core = [(27, 16), (28, 16)] if v6 else [(8, 4), (12, 4)]
        core += [(7, 2), (11, 2), (4, 1), (6, 1), (1, r.choice([4, 8])), (2, r.choice([4, 8]))]
        times = r.choice(
            [[(152, 8), (153, 8)], [(150, 4), (151, 4)], [(22, 4), (21, 4)], [(154, 8), (155, 8)],
             [(156, 8), (157, 8)], [(158, 4), (159, 4)], [(153, 8)], [], [(22, 4), (21, 4), (152, 8)]]
        )  # fmt: skip
        extras = r.sample(
            [(10, 2), (14, 2), (10, 4), (60, 1), (5, 1), (56, 6), (80, 6), (15, 4), (16, 4), (17, 2), (32, 2),
             (139, 2), (58, 2), (61, 1), (85, 8), (86, 8), (82, 16), (9, 1), (13, 1), (136, 1), (400, 4),
             (62, 16), (225, 4), (227, 2), (1, 3), (2, 5), (8, 3), (12, 16), (56, 4), (4, 2), (7, 4), (6, 2),
             (1, 16), (34, 4), (239, 1), (148, 8), (0, 4), (60, 3)],
            r.randrange(0, 7),
        )  # fmt: skip
        fields = [(ie, ln, 0) for ie, ln in core + times + extras]
        if r.random() < 0.2:  # an element whose core copy is dropped, or one that repeats
            fields.pop(r.randrange(len(fields)))
        if r.random() < 0.15:
            fields.append(r.choice(fields))
        if ipfix and r.random() < 0.3:
            fields.insert(r.randrange(len(fields) + 1), (r.randrange(1, 500), r.choice([2, 4, 7]), 29305))
        if ipfix and r.random() < 0.15:
            fields.insert(r.randrange(len(fields) + 1), (82, 0xFFFF, 0))
        if r.random() < 0.3:
            r.shuffle(fields)
        return fields

    def record(self, fields: list[tuple[int, int, int]], base_ms: int) -> bytes:
        out = b""
        for ie, length, _ent in fields:
            if length == 0xFFFF:
                text = self.rnd.choice([b"eth0", b"", b"x" * 300, b"Gi0/0/1"])
                prefix = bytes([len(text)]) if len(text) < 255 else b"\xff" + struct.pack("!H", len(text))
                out += prefix + text
            else:
                out += self.value(ie, length, base_ms)
        return out

    # packets ---------------------------------------------------------------------------------------
    def v5(self, exporter: str, packets: int) -> None:
        r = self.rnd
        seq = r.randrange(1 << 32)
        for p in range(packets):
            count = r.choice([1, 5, 30])
            uptime = 3_600_000 + p * 1000
            secs = _T0_MS // 1000 + p
            sampling = r.choice([0, 0, 0x4000 | 100, 64])
            body = b""
            for _ in range(count):
                proto = r.choice([6, 6, 17, 1, 47])
                dport = r.choice([0x0800, 0x0303]) if proto == 1 else r.choice([22, 53, 443, 0])
                first = uptime - r.randrange(50_000)
                body += (
                    self.ip4() + self.ip4() + self.ip4()
                    + struct.pack("!HHIIIIHH", r.randrange(8), r.randrange(8), r.randrange(1, 1 << 20),
                                  r.randrange(1, 10_000), first, first + r.randrange(40_000),
                                  r.randrange(1024, 65535), dport)
                    + struct.pack("!BBBBHHBBH", 0, r.choice([0, 0x1B, 0x02]), proto, 0, 0, 0, 24, 24, 0)
                )  # fmt: skip
            header = struct.pack("!HHIIIIBBH", 5, count, uptime, secs, 0, seq, 0, r.randrange(3), sampling)
            self.emit(exporter, header + body)
            seq = (seq + count) & 0xFFFFFFFF

    def template_set(self, ipfix: bool, tid: int, fields: list[tuple[int, int, int]]) -> bytes:
        body = struct.pack("!HH", tid, len(fields))
        for ie, length, ent in fields:
            body += struct.pack("!HH", ie | (0x8000 if ent else 0), length) + (struct.pack("!I", ent) if ent else b"")
        return struct.pack("!HH", 2 if ipfix else 0, 4 + len(body)) + body

    def options_sets(self, ipfix: bool, tid: int, base_ms: int) -> bytes:
        """An options template and one record carrying the sampling interval and system init time."""
        r = self.rnd
        if ipfix:
            fields = [(149, 4), (160, 8), (305, 4)]
            body = struct.pack("!HHH", tid, len(fields), 1) + b"".join(struct.pack("!HH", *f) for f in fields)
            tset = struct.pack("!HH", 3, 4 + len(body)) + body
            record = struct.pack("!IQI", 0, base_ms - r.randrange(10_000_000), r.choice([0, 1, 512]))
        else:
            scopes, options = [(1, 4)], [(34, 4), (35, 1)]
            body = struct.pack("!HHH", tid, 4 * len(scopes), 4 * len(options))
            body += b"".join(struct.pack("!HH", *f) for f in scopes + options)
            tset = struct.pack("!HH", 1, 4 + len(body)) + body
            record = struct.pack("!IIB", 0, r.choice([0, 100, 1000]), 2)
        pad = b"\x00" * (-len(record) % 4)
        return tset + struct.pack("!HH", tid, 4 + len(record) + len(pad)) + record + pad

    def stream(self, exporter: str, version: int, packets: int) -> None:
        r = self.rnd
        ipfix = version == 10
        domain = r.randrange(4)
        templates: dict[int, list[tuple[int, int, int]]] = {}
        seq = 0
        for p in range(packets):
            base_ms = _T0_MS + p * 1000 + r.randrange(1000)
            sets = b""
            if p == 0:
                sets += self.options_sets(ipfix, 400, base_ms)
            if p % 7 == 0 or not templates:
                tid = 256 + r.randrange(6)
                templates[tid] = self.flow_fields(ipfix)
                if r.random() < 0.2 and p:  # data first, template in a later packet: a held set
                    held = self.record(templates[tid], base_ms)
                    self.emit_sets(exporter, version, domain, seq, base_ms, self.data_set(tid, [held]))
                    seq += 1
                sets += self.template_set(ipfix, tid, templates[tid])
            for tid in r.sample(sorted(templates), min(len(templates), r.choice([1, 1, 2]))):
                sets += self.data_set(tid, [self.record(templates[tid], base_ms) for _ in range(r.randrange(1, 12))])
            if ipfix and p == packets // 2 and templates:
                gone = next(iter(templates))
                sets += struct.pack("!HH", 2, 8) + struct.pack("!HH", gone, 0)
                del templates[gone]
            self.emit_sets(exporter, version, domain, seq, base_ms, sets)
            seq += 1

    def data_set(self, tid: int, records: list[bytes]) -> bytes:
        body = b"".join(records)
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("!HH", tid, 4 + len(body)) + body

    def emit_sets(self, exporter: str, version: int, domain: int, seq: int, base_ms: int, sets: bytes) -> None:
        secs = base_ms // 1000 + 2
        if version == 10:
            self.emit(exporter, struct.pack("!HHIII", 10, 16 + len(sets), secs, seq, domain) + sets)
        else:
            self.emit(exporter, struct.pack("!HHIIII", 9, 1, 3_600_000 + seq * 1000, secs, seq, domain) + sets)

    def build(self) -> list[tuple[str, bytes, float]]:
        self.v5("192.0.2.5", 40)
        for i in range(4):
            self.stream(f"198.51.100.{i + 1}", 9, 50)
            self.stream(f"203.0.113.{i + 1}", 10, 50)
        self.stream("2001:db8::9", 10, 30)
        return self.out


def softflowd_datagrams(capture: Path, version: int, workdir: Path) -> list[bytes]:
    """What softflowd sends for ``capture``, caught on a loopback socket."""
    from peers import softflowd_export

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        sock.bind(("127.0.0.1", 0))
        softflowd_export(capture, sock.getsockname()[1], version, workdir)
        sock.settimeout(1.0)
        out: list[bytes] = []
        while True:
            try:
                out.append(sock.recv(65535))
            except TimeoutError:
                return out


def write_fixture() -> None:
    from peers import pcap

    rows: list[tuple[str, bytes, float]] = Corpus().build()
    with tempfile.TemporaryDirectory() as tmp:
        for name in SOFTFLOWD_CAPTURES:
            for version in (5, 9, 10):
                for packet in softflowd_datagrams(pcap(name), version, Path(tmp)):
                    rows.append((f"127.0.{version}.{SOFTFLOWD_CAPTURES.index(name) + 1}", packet, time.monotonic()))
    decoder = FlowDecoder()
    FIXTURE.parent.mkdir(exist_ok=True)
    events = 0
    with gzip.open(FIXTURE, "wt", encoding="utf-8", compresslevel=9) as fh:
        for exporter, packet, now in rows:
            now = round(now, 3)
            built = packet_events(decoder, exporter, packet, now)
            events += len(built)
            row = {"exporter": exporter, "packet": base64.b64encode(packet).decode(), "now": now, "events": built}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} datagrams, {events} events -> {FIXTURE}")


# -- the tests ---------------------------------------------------------------------------------------
def test_events_match_the_golden_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.netflow import events

    monkeypatch.setattr(events, "COMPILE_BUDGET", events._CompileBudget(per_second=1e9, burst=1e9))
    decoder = FlowDecoder()
    rows = built_events = 0
    for exporter, packet, now, expected in load_fixture():
        built = packet_events(decoder, exporter, packet, now)
        assert json.dumps(built, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False), (exporter, rows)
        rows += 1
        built_events += len(built)
    assert rows > 500 and built_events > 5000  # the fixture is the corpus, not an empty file
    live = [t for dom in decoder.templates.domains.values() for t in dom.templates.values() if not t.options]
    assert sum(1 for t in live if t.builders) >= len(live) // 2  # the compiled builders made these events


def test_the_corpus_is_still_what_the_fixture_was_made_from() -> None:
    """The generator and the stored datagrams agree, so ``--write`` reproduces the same inputs."""
    generated = Corpus().build()
    stored = [(exporter, packet) for exporter, packet, _now, _events in load_fixture()][: len(generated)]
    assert [(e, p) for e, p, _ in generated] == stored


@pytest.mark.parametrize("version", [5, 9, 10])
def test_the_fixture_covers_every_version(version: int) -> None:
    versions = {struct.unpack_from("!H", packet)[0] for _e, packet, _n, events in load_fixture() if events}
    assert version in versions


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: test_netflow_golden.py --write")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    write_fixture()

"""Every record of every real sample file is read and accounted for."""

from __future__ import annotations

import shutil
from pathlib import Path

from evtx import PyEvtxParser

from agent.windows.evtx_file import EvtxStats, read_evtx


def test_every_sample_record_becomes_an_event(evtx_files: list[Path]) -> None:
    assert len(evtx_files) >= 250
    stats = EvtxStats()
    expected = 0
    for path in evtx_files:
        expected += sum(1 for _ in PyEvtxParser(str(path)).records())
        ids: set[str] = set()
        for event in read_evtx(path, stats=stats):
            assert event["@timestamp"].endswith("Z")
            assert event["event"]["code"] == event["winlog"]["event_id"] != ""
            assert event["event"]["dataset"].startswith("windows.")
            assert event["event"]["original"].startswith("<Event")
            assert "soc" not in event, (path, event.get("soc"))
            ids.add(event["event"]["id"])
        assert stats.file_errors == []
    assert stats.records == expected == stats.events + stats.failed
    assert stats.failed == 0 and stats.partial == 0
    assert stats.files == len(evtx_files)
    assert expected > 7000


def test_reading_twice_gives_the_same_event_ids(samples: Path) -> None:
    path = samples / "Command and Control" / "DE_RDP_Tunnel_5156.evtx"
    first = [e["event"]["id"] for e in read_evtx(path)]
    second = [e["event"]["id"] for e in read_evtx(path, xml_original=False)]
    assert first == second
    assert len(set(first)) == len(first)


def test_corrupt_file_yields_what_it_can_and_counts_the_rest(samples: Path, tmp_path: Path) -> None:
    source = samples / "Other" / "rdpcorets_148_mst120_bluekeep_rpdscan_full.evtx"
    good = sum(1 for _ in PyEvtxParser(str(source)).records())
    data = bytearray(source.read_bytes())
    for offset in range(0x1000 + 0x200 + 5000, 0x1000 + 0x200 + 5200):  # inside the first chunk
        data[offset] ^= 0xFF
    broken = tmp_path / "broken.evtx"
    broken.write_bytes(bytes(data))
    stats = EvtxStats()
    events = list(read_evtx(broken, stats=stats))
    assert stats.failed > 0
    assert sum(stats.reasons.values()) == stats.failed
    assert all(reason.startswith("RuntimeError: ") for reason in stats.reasons)
    assert len(events) == stats.events == stats.records - stats.failed
    assert len(events) >= good - 10


def test_not_an_evtx_file_is_a_file_error(tmp_path: Path, samples: Path) -> None:
    junk = tmp_path / "junk.evtx"
    junk.write_bytes(b"not an event log" * 100)
    stats = EvtxStats()
    assert list(read_evtx(junk, stats=stats)) == []
    assert list(read_evtx(tmp_path / "missing.evtx", stats=stats)) == []
    assert len(stats.file_errors) == 2 and stats.files == 2
    # a truncated copy still reads, and nothing is invented
    source = samples / "Lateral Movement" / "LM_Remote_Service02_7045.evtx"
    cut = tmp_path / "cut.evtx"
    shutil.copyfile(source, cut)
    with cut.open("r+b") as handle:
        handle.truncate(source.stat().st_size // 2)
    stats = EvtxStats()
    events = list(read_evtx(cut, stats=stats))
    assert stats.records == len(events) + stats.failed
    assert len(events) <= sum(1 for _ in PyEvtxParser(str(source)).records())

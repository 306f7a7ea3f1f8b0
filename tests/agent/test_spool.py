"""The disk spool: durability, crash recovery, bounds and the on_full policies."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from agent.config import SpoolSettings
from agent.spool import Spool, SpoolFull, SpoolLocked


def events(n: int, start: int = 0, pad: int = 50) -> list[dict]:
    return [{"event": {"id": f"e{i}"}, "message": "x" * pad} for i in range(start, start + n)]


def ids(batch: list[dict]) -> list[str]:
    return [e["event"]["id"] for e in batch]


def ours(got: list[str]) -> list[str]:
    """Our test events only (spool_full notices have random ids)."""
    return [i for i in got if re.fullmatch(r"e\d+", i)]


def drain(spool: Spool, max_events: int = 7) -> list[str]:
    out: list[str] = []
    while True:
        cursor, batch = spool.read_batch(max_events, 10**9)
        if not batch:
            return out
        out += ids(batch)
        spool.ack(cursor)


def test_append_read_ack_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(segment_bytes=1000))
    for k in range(10):
        spool.append(events(10, start=10 * k))
    assert spool.pending_events == 100
    assert spool.status()["segments"] > 3
    assert drain(spool) == [f"e{i}" for i in range(100)]
    assert spool.pending_events == 0 and spool.pending_bytes == 0
    # acknowledged segments are deleted: only the active one is left
    assert len(list(tmp_path.glob("*.seg"))) == 1


def test_unacked_batch_is_read_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(10))
    _, first = spool.read_batch(4, 10**9)
    _, again = spool.read_batch(4, 10**9)
    assert ids(first) == ids(again) == ["e0", "e1", "e2", "e3"]


def test_read_respects_max_bytes_but_returns_at_least_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(5, pad=1000))
    _, batch = spool.read_batch(100, 2500)
    assert len(batch) == 2
    _, batch = spool.read_batch(100, 10)
    assert len(batch) == 1


def test_reopen_keeps_unacked_and_forgets_acked(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(segment_bytes=500))
    spool.append(events(30))
    cursor, _ = spool.read_batch(12, 10**9)
    spool.ack(cursor)
    spool.close()
    reopened = Spool(tmp_path, SpoolSettings(segment_bytes=500))
    assert reopened.pending_events == 18
    assert drain(reopened) == [f"e{i}" for i in range(12, 30)]


def test_torn_tail_is_truncated_and_earlier_records_survive(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(5))
    spool.close()
    segment = sorted(tmp_path.glob("*.seg"))[-1]
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # crash in the middle of the last record
    reopened = Spool(tmp_path, SpoolSettings())
    assert reopened.status()["truncated_bytes"] > 0
    reopened.append(events(2, start=100))
    assert drain(reopened) == ["e0", "e1", "e2", "e3", "e100", "e101"]


def test_flipped_bit_in_tail_is_detected_by_crc(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(3))
    spool.close()
    segment = sorted(tmp_path.glob("*.seg"))[-1]
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert drain(Spool(tmp_path, SpoolSettings())) == ["e0", "e1"]


def test_crash_between_cursor_write_and_segment_delete(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(segment_bytes=400))
    spool.append(events(20))
    first_segment = sorted(tmp_path.glob("*.seg"))[0]
    kept = first_segment.read_bytes()
    cursor, _ = spool.read_batch(20, 10**9)
    spool.ack(cursor)
    spool.close()
    first_segment.write_bytes(kept)  # as if the process died before deleting it
    reopened = Spool(tmp_path, SpoolSettings(segment_bytes=400))
    assert reopened.pending_events == 0
    assert not first_segment.exists()


def test_garbage_cursor_file_means_redelivery_not_loss(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(4))
    cursor, _ = spool.read_batch(2, 10**9)
    spool.ack(cursor)
    spool.close()
    (tmp_path / "cursor.json").write_text("{not json")
    assert drain(Spool(tmp_path, SpoolSettings())) == ["e0", "e1", "e2", "e3"]


def test_cursor_not_on_record_boundary_moves_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(4))
    cursor, _ = spool.read_batch(2, 10**9)
    spool.close()
    (tmp_path / "cursor.json").write_text(json.dumps({"segment": cursor.segment, "offset": cursor.offset + 3}))
    assert drain(Spool(tmp_path, SpoolSettings())) == ["e2", "e3"]


def test_second_process_cannot_open_the_same_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    with pytest.raises(SpoolLocked):
        Spool(tmp_path, SpoolSettings())
    spool.close()
    Spool(tmp_path, SpoolSettings()).close()


def test_block_policy_times_out_then_resumes_after_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(max_bytes=2000, on_full="block", block_timeout=0.2))
    spool.append(events(20))  # ~1700 bytes
    with pytest.raises(SpoolFull):
        spool.append(events(10, start=20))
    assert spool.status()["blocked_seconds"] >= 0.2
    assert spool.dropped_events == 0
    # a blocked append completes as soon as the shipper acknowledges
    done = threading.Event()

    def blocked_append() -> None:
        spool.append(events(10, start=20), timeout=5)
        done.set()

    thread = threading.Thread(target=blocked_append)
    thread.start()
    assert not done.wait(0.2)
    cursor, _ = spool.read_batch(100, 10**9)
    spool.ack(cursor)
    thread.join(5)
    assert done.is_set()
    assert ours(drain(spool, 100)) == [f"e{i}" for i in range(20, 30)]


def test_drop_newest_keeps_old_data_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(max_bytes=2000, on_full="drop_newest"))
    spool.append(events(20))
    spool.append(events(10, start=20))
    assert spool.dropped_events == 10
    assert ours(drain(spool, 100)) == [f"e{i}" for i in range(20)]


def test_drop_oldest_keeps_new_data_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(max_bytes=2000, segment_bytes=500, on_full="drop_oldest"))
    for k in range(6):
        spool.append(events(10, start=10 * k))
    status = spool.status()
    assert status["dropped_events"] > 0
    assert status["pending_bytes"] <= 2000 + 200  # the bound, plus at most the spool_full notice
    got = drain(spool, 100)
    kept = ours(got)
    assert kept[-10:] == [f"e{i}" for i in range(50, 60)]
    notices_left = len(got) - len(kept)
    assert len(kept) + spool.dropped_events == 60 + 1 - notices_left  # one (throttled) notice


def test_spool_full_raises_a_self_event(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(max_bytes=2000, on_full="drop_newest"))
    spool.append(events(20))
    spool.append(events(10, start=20))
    _, batch = spool.read_batch(100, 10**9)
    notices = [e for e in batch if e.get("event", {}).get("action") == "spool_full"]
    assert len(notices) == 1
    assert notices[0]["event"]["dataset"] == "soc.agent"
    assert notices[0]["soc"]["agent"]["spool"]["dropped_events"] == 10


def test_oversized_batch_fits_into_an_empty_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings(max_bytes=100, on_full="block", block_timeout=0.1))
    spool.append(events(5))
    assert spool.pending_events == 5


def test_stale_cursor_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path, SpoolSettings())
    spool.append(events(6))
    first, _ = spool.read_batch(3, 10**9)
    spool.ack(first)
    spool.ack(first)  # a repeated ack must not count twice
    assert spool.pending_events == 3


def test_append_raw_moves_records_between_spools(tmp_path: Path) -> None:
    a = Spool(tmp_path / "a", SpoolSettings())
    b = Spool(tmp_path / "b", SpoolSettings())
    a.append(events(3))
    cursor, records = a.read_records(10, 10**9)
    b.append_raw(records)
    a.ack(cursor)
    assert drain(b) == ["e0", "e1", "e2"]
    assert a.pending_events == 0

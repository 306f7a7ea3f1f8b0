"""Syslog stream lines shared out among ingest workers (collector.syslog.share).

Two real receivers stand for two workers, each on its own ports so the test decides where a sender
connects; the workers on one shared port are exercised in ``test_workers.py``.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from peers import Collect, wait_for

from collector.config import SyslogSettings
from collector.syslog.framing import Frame
from collector.syslog.server import SyslogReceiver
from collector.syslog.share import StreamShare
from collector.workers.mailbox import MAX_MESSAGE_BYTES, WorkerPlace


def _worker(tmp_path: Path, me: int, kept: Collect, max_message_bytes: int = 64 * 1024) -> SyslogReceiver:
    settings = SyslogSettings(enabled=True, udp_port=None, tcp_port=0, tls_port=None, flush_interval=0.05,
                              batch_size=200, max_message_bytes=max_message_bytes)  # fmt: skip
    rx = SyslogReceiver(settings, kept, state_dir=tmp_path / f"state{me}", place=WorkerPlace(tmp_path, 2, me))
    rx.start()
    return rx


def _send(port: int, first: int, count: int) -> None:
    payload = b"".join(
        b"<13>1 2026-11-22T01:02:03.000Z relay app - - - line %d\n" % i for i in range(first, first + count)
    )
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for at in range(0, len(payload), 8192):  # many reads, so many chunks to share out
            conn.sendall(payload[at : at + 8192])


def test_chunks_pack_and_unpack_whole(tmp_path: Path) -> None:
    share = StreamShare(WorkerPlace(tmp_path, 2, 0))
    try:
        frames = [Frame(b"a" * 100, False), Frame(b"", False), Frame(b"\xff\x00 bytes", True)]
        frames += [Frame(b"x" * 50_000, False) for _ in range(7)]  # more than one message's worth
        from collector.syslog.share import _messages

        messages = list(_messages(frames, "2001:db8::7", 514))
        assert len(messages) > 1 and sum(count for _, count in messages) == len(frames)
        back: list[Frame] = []
        for parts, _count in messages:
            joined = b"".join(parts)
            assert len(joined) <= MAX_MESSAGE_BYTES
            got, ip, port = StreamShare.unpack(memoryview(joined))
            assert (ip, port) == ("2001:db8::7", 514)
            back += got
        assert back == frames
        with pytest.raises(ValueError):
            StreamShare.unpack(memoryview(b"".join(messages[0][0])[:-10]))  # cut short
    finally:
        share.close()


def test_one_connection_is_parsed_by_both_workers_and_every_line_kept_once(tmp_path: Path) -> None:
    kept0, kept1 = Collect(), Collect()
    zero, one = _worker(tmp_path, 0, kept0), _worker(tmp_path, 1, kept1)
    try:
        _send(zero.ports["tcp"], 0, 20_000)
        assert wait_for(lambda: len(kept0.events) + len(kept1.events) == 20_000, 30)
        assert sorted(kept0.messages() + kept1.messages()) == sorted(f"line {i}" for i in range(20_000))
        s0, s1 = zero.stats(), one.stats()
        assert s0["lines_handed_over"] == s1["lines_taken_over"] == len(kept1.events) > 5_000
        assert s0["received"] + s1["received"] == 20_000 and s0["handovers_failed"] == 0
        assert {e["log"]["source"]["address"] for e in kept1.events} == {
            e["log"]["source"]["address"] for e in kept0.events
        }

        one.stop()  # the other worker is gone: its share is parsed where it was read
        _send(zero.ports["tcp"], 20_000, 5_000)
        assert wait_for(lambda: len(kept0.events) + len(kept1.events) == 25_000, 30)
        assert sorted(kept0.messages() + kept1.messages()) == sorted(f"line {i}" for i in range(25_000))
        assert zero.stats()["handovers_failed"] > 0
    finally:
        zero.stop()
        one.stop()


def test_a_line_too_long_for_a_mailbox_is_parsed_where_it_was_read(tmp_path: Path) -> None:
    kept0, kept1 = Collect(), Collect()
    zero = _worker(tmp_path, 0, kept0, max_message_bytes=400_000)
    one = _worker(tmp_path, 1, kept1, max_message_bytes=400_000)
    try:
        long_line = b"<13>1 2026-11-22T01:02:03.000Z relay app - - - " + b"y" * (MAX_MESSAGE_BYTES + 1000) + b"\n"
        with socket.create_connection(("127.0.0.1", zero.ports["tcp"])) as conn:
            for _ in range(2):  # a few lines a read go whole to one worker in turn: the second is worker 1's
                conn.sendall(long_line)
                assert wait_for(lambda n=len(kept0.events): len(kept0.events) == n + 1)
        assert kept1.events == [] and zero.stats()["handovers_failed"] == 1
        assert all(len(e["message"]) == MAX_MESSAGE_BYTES + 1000 for e in kept0.events)
    finally:
        zero.stop()
        one.stop()

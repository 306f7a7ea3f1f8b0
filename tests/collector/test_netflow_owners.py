"""NetFlow exporters spread over the ingest workers by count, and packets handed to their owner.

Two real receivers stand for two workers (each on its own port, so the test decides which one a
router's packets reach); the kernel's choice between workers on one shared port is exercised in
``test_workers.py``.
"""

from __future__ import annotations

import multiprocessing
import socket
from pathlib import Path
from typing import Any

from peers import Collect, netflow_stream, wait_for

from collector.config import NetflowSettings
from collector.netflow.owners import MAX_EXPORTERS, ExporterOwners
from collector.netflow.server import NetflowReceiver
from collector.workers.mailbox import WorkerPlace


def _receiver(folder: Path, me: int, kept: Collect) -> NetflowReceiver:
    settings = NetflowSettings(enabled=True, host="127.0.0.1", port=0, batch_size=100, flush_interval=0.05)
    return NetflowReceiver(settings, kept, place=WorkerPlace(folder, 2, me))


def _send_from(address: str, port: int, packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        for packet in packets:
            s.sendto(packet, ("127.0.0.1", port))


def test_new_exporters_go_to_the_worker_with_fewest_and_stay_there(tmp_path: Path) -> None:
    first, second = ExporterOwners(tmp_path, 3, me=0), ExporterOwners(tmp_path, 3, me=1)
    assert first.owner("10.0.0.1") == 0  # a tie: the worker that saw it keeps it (no hand-over)
    assert first.owner("10.0.0.2") == 1  # 0 has one already
    assert first.owner("10.0.0.3") == 2
    assert second.owner("10.0.0.1") == 0  # another worker reads the same table
    assert second.owner("10.0.0.4") == 1  # a tie of three: worker 1 asked
    assert first.owner("10.0.0.4") == 1
    # a restarted worker (same index, nothing cached) finds the run's assignments
    assert ExporterOwners(tmp_path, 3, me=2).owner("10.0.0.2") == 1


def test_a_damaged_table_is_started_again_without_failing_the_reader(tmp_path: Path) -> None:
    owners = ExporterOwners(tmp_path, 2, me=0)
    owners.path.write_text('{"10.0.0.1": 1, "10.0.0.2"')  # a worker killed while writing
    assert owners.owner("10.0.0.9") == 0
    owners.path.write_text('{"10.0.0.1": "one", "10.0.0.2": 7}')  # nonsense owners are ignored
    assert ExporterOwners(tmp_path, 2, me=1).owner("10.0.0.2") in (0, 1)


def test_a_flood_of_new_sources_stops_being_assigned_at_the_cap(tmp_path: Path) -> None:
    owners = ExporterOwners(tmp_path, 2, me=1)
    owners.known.update({f"198.51.{i // 256}.{i % 256}": 0 for i in range(MAX_EXPORTERS)})
    assert owners.owner("203.0.113.1") == 1  # decoded where it landed
    assert not owners.path.exists()  # and nothing written


def _ask(folder: str, me: int, addresses: list[str], out: Any) -> None:
    owners = ExporterOwners(Path(folder), 4, me)
    out.put({address: owners.owner(address) for address in addresses})


def test_workers_racing_for_new_exporters_agree_and_stay_balanced(tmp_path: Path) -> None:
    addresses = [f"10.1.0.{i}" for i in range(40)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_ask, args=(str(tmp_path), me, addresses[me::2] + addresses[::-1], out)) for me in range(4)
    ]
    for proc in procs:
        proc.start()
    answers = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    for address in addresses:
        assert len({answer[address] for answer in answers}) == 1, address
    counts = [sum(1 for owner in answers[0].values() if owner == w) for w in range(4)]
    assert max(counts) - min(counts) <= 1 and sum(counts) == 40


def test_packets_reach_the_owner_and_fall_back_here_when_it_is_gone(tmp_path: Path) -> None:
    kept0, kept1 = Collect(), Collect()
    zero, one = _receiver(tmp_path, 0, kept0), _receiver(tmp_path, 1, kept1)
    port0 = zero.start()
    one.start()
    try:
        stream = netflow_stream(10, 40)  # a template every 20 packets, 30 records each
        _send_from("127.0.0.2", port0, stream)  # first seen by worker 0: its own (a tie)
        _send_from("127.0.0.3", port0, stream)  # worker 0 has one: worker 1's
        assert wait_for(lambda: len(kept0.events) == 1200 and len(kept1.events) == 1200)
        assert kept0.observers() == {"127.0.0.2"} and kept1.observers() == {"127.0.0.3"}
        assert zero.stats()["packets_handed_over"] == 40 and one.stats()["packets_taken_over"] == 40
        assert zero.stats()["packets_received"] == 80 and one.stats()["packets_received"] == 0
        for stats in (zero.stats(), one.stats()):
            assert stats["missing_ipfix_records"] == 0 and stats["sets_dropped_no_template"] == 0

        one.stop()  # the owner is gone (killed, or restarting): worker 0 decodes the packets itself
        later = netflow_stream(10, 40, start_ms=1_700_100_000_000)[20:]  # starts with a template
        _send_from("127.0.0.3", port0, later)
        assert wait_for(lambda: len(kept0.events) == 1200 + 600)
        assert zero.stats()["handovers_failed"] == 20
        assert {e["observer"]["ip"] for e in kept0.events[1200:]} == {"127.0.0.3"}

        kept_new = Collect()  # the supervisor's replacement for worker 1 binds the same mailbox
        replacement = _receiver(tmp_path, 1, kept_new)
        replacement.start()
        try:
            again = netflow_stream(10, 40, start_ms=1_700_200_000_000)[20:]
            _send_from("127.0.0.3", port0, again)
            assert wait_for(lambda: len(kept_new.events) == 600)  # the exporter is worker 1's again
            assert replacement.stats()["packets_taken_over"] == 20 and zero.stats()["handovers_failed"] == 20
        finally:
            replacement.stop()
    finally:
        zero.stop()
        one.stop()

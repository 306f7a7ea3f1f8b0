"""The detection queue is bounded in events, not only in batches: ingest waits instead of memory growing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.detection.loader import load_engine
from collector.pipeline.sinks import DetectionSink, JsonlAlertSink
from tests.collector.test_collector_runtime import RULE, whoami_event


class _Gated:
    """The real engine, run only once the test opens the gate (to hold events in the queue)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.gate = threading.Event()
        self.seen = 0

    def process(self, events: Sequence[dict[str, Any]]) -> list[Any]:
        self.gate.wait(10)
        self.seen += len(events)
        return list(self.engine.process(events))


def _sink(tmp_path: Path, max_events: int) -> tuple[DetectionSink, _Gated]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(RULE)
    engine = _Gated(load_engine([rules]))
    return DetectionSink(engine, JsonlAlertSink(tmp_path / "alerts.jsonl"), max_events=max_events), engine


def _batch(prefix: str, n: int) -> list[dict[str, Any]]:
    return [whoami_event(f"{prefix}{i}") for i in range(n)]


def test_a_writer_waits_while_the_queued_events_would_pass_the_bound(tmp_path: Path) -> None:
    sink, engine = _sink(tmp_path, max_events=100)
    try:
        sink.write(_batch("a", 60))  # taken by the detection thread, which waits at the gate
        sink.write(_batch("b", 30))  # 90 queued: fits
        third = threading.Thread(target=sink.write, args=(_batch("c", 20),))
        third.start()
        third.join(0.5)
        assert third.is_alive(), "110 events would be queued: the writer must wait"
        engine.gate.set()
        third.join(5)
        assert not third.is_alive()
        assert sink.drain(10)
        assert engine.seen == 110 and sink.alerts == 110
    finally:
        engine.gate.set()
        sink.close()


def test_a_batch_larger_than_the_bound_still_goes_through_an_empty_queue(tmp_path: Path) -> None:
    sink, engine = _sink(tmp_path, max_events=10)
    engine.gate.set()
    try:
        done = threading.Thread(target=sink.write, args=(_batch("big", 50),))
        done.start()
        done.join(5)
        assert not done.is_alive()
        assert sink.drain(10) and engine.seen == 50
    finally:
        sink.close()

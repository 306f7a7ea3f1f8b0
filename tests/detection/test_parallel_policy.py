"""``--workers 0`` forks only for input whose measured work pays for it; the answer never changes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from collector.detection import parallel
from collector.detection.engine import DetectionEngine
from collector.detection.hunt_inputs import InputStats, Sourced
from detection.helpers import engine_from, rule_yaml


@pytest.fixture
def engine(tmp_path: Path) -> DetectionEngine:
    return engine_from(tmp_path, rule_yaml("sel:\n    user|startswith: b\ncondition: sel"))


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    files = []
    for i in range(6):
        path = tmp_path / f"in{i}.jsonl"
        users = ["bob", "eve", f"b{i}", "alice"] * (i + 1)
        path.write_text("\n".join(json.dumps({"user": u, "n": n}) for n, u in enumerate(users)), encoding="utf-8")
        files.append(path)
    return files


def _run(engine: DetectionEngine, files: list[Path], workers: int) -> tuple[list[tuple[str, int, list[int]]], int]:
    stats = InputStats()
    out = [(i.file, i.record, m) for i, m in parallel.match_inputs(engine, files, stats, workers)]
    return out, stats.events


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Records each fork-out's (files for workers, workers, files matched here meanwhile)."""
    calls: list[tuple[int, int, int]] = []
    real = parallel.match_files

    def spy(
        engine: DetectionEngine, files: Sequence[Path], stats: InputStats, workers: int, *, here: Sequence[Path] = ()
    ) -> Iterator[tuple[Sourced, list[int]]]:
        calls.append((len(files), workers, len(here)))
        return real(engine, files, stats, workers, here=here)

    monkeypatch.setattr(parallel, "match_files", spy)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    return calls


def test_small_input_stays_in_one_process(
    engine: DetectionEngine, inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(monkeypatch)
    out, events = _run(engine, inputs, 0)
    assert calls == []
    assert events == sum(4 * (i + 1) for i in range(6))
    assert len(out) == 2 * 21


def test_large_measured_work_forks_for_the_rest_with_the_same_answer(
    engine: DetectionEngine, inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sequential = _run(engine, inputs, 1)
    calls = _spy(monkeypatch)
    monkeypatch.setattr(parallel, "MIN_MEASURED_SECONDS", 0.0)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_SECONDS", 0.0)
    assert _run(engine, inputs, 0) == sequential
    # The first file measured here; of the rest, this process matches the first ones (its share)
    # while one worker (two cores) matches the last ones.
    ((to_workers, workers, here),) = calls
    assert workers == 1 and to_workers > 0
    assert to_workers + here == len(inputs) - 1


def test_own_share_leaves_room_for_the_output() -> None:
    assert parallel.own_share(1.0, 0.0, 1) == pytest.approx(0.5)  # matching only: half each
    assert parallel.own_share(1.0, 0.0, 3) == pytest.approx(0.25)
    assert parallel.own_share(1.0, 0.5, 1) == pytest.approx(0.25)  # writing matches costs this process
    assert parallel.own_share(1.0, 2.0, 1) == 0.0  # output alone keeps it busy: workers match all
    assert parallel.own_share(0.0, 1.0, 1) == 0.0


def test_explicit_workers_fork_from_the_start(
    engine: DetectionEngine, inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sequential = _run(engine, inputs, 1)
    calls = _spy(monkeypatch)
    assert _run(engine, inputs, 2) == sequential
    assert calls == [(len(inputs), 2, 0)]


def test_worker_count() -> None:
    files: list[Any] = [Path("a"), Path("b"), Path("c")]
    assert parallel.worker_count(0, files) == 1
    assert parallel.worker_count(1, files) == 1
    assert parallel.worker_count(8, files) == 3
    assert parallel.worker_count(2, files[:1]) == 1


def test_busy_cores_raise_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert parallel.needed_seconds(2) == pytest.approx(parallel.MIN_PARALLEL_SECONDS)
    monkeypatch.setattr(parallel.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert parallel.needed_seconds(2) == pytest.approx(parallel.MIN_PARALLEL_SECONDS * 2)
    monkeypatch.setattr(parallel.os, "getloadavg", lambda: (7.0, 0.0, 0.0))
    assert parallel.needed_seconds(2) == pytest.approx(parallel.MIN_PARALLEL_SECONDS * 4)  # a big input still forks

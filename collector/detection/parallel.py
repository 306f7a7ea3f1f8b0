"""Hunt over many files on every core: workers read and match, the parent keeps order and state.

Reading, normalising and matching an event needs no state, so forked workers (sharing the loaded
engine copy-on-write, no rule reload) do it file by file, largest files first so the cores finish
together. Only matching events travel back. The parent re-orders results to input order and does
the stateful part (correlations, output), so the answer is exactly the sequential one.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.detection.engine import DetectionEngine
from collector.detection.hunt_inputs import InputStats, Sourced, input_files, read_inputs

#: Below this much input, starting workers costs more than it saves.
MIN_PARALLEL_BYTES = 4 * 1024 * 1024

_ENGINE: DetectionEngine | None = None  # set in the parent before forking; workers inherit it


@dataclass
class _FileResult:
    position: int
    matches: list[tuple[Sourced, list[int]]] = field(default_factory=list)
    stats: InputStats = field(default_factory=InputStats)
    candidates: int = 0
    rule_errors: int = 0


def _work(task: tuple[int, str]) -> _FileResult:
    position, path = task
    engine = _ENGINE
    assert engine is not None, "worker started without an engine"
    result = _FileResult(position)
    before_candidates, before_errors = engine.stats.candidates, engine.stats.rule_errors
    for item in read_inputs([Path(path)], result.stats):
        matched = engine.match(item.event)
        if matched:
            result.matches.append((item, matched))
    result.candidates = engine.stats.candidates - before_candidates
    result.rule_errors = engine.stats.rule_errors - before_errors
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def worker_count(requested: int, files: Sequence[Path]) -> int:
    """Workers to use: ``requested`` (0 = one per core when the input is big enough to pay)."""
    if requested > 0:
        return min(requested, max(len(files), 1))
    if len(files) < 2 or sum(_size(p) for p in files) < MIN_PARALLEL_BYTES:
        return 1
    return min(os.cpu_count() or 1, len(files))


def match_files(
    engine: DetectionEngine, files: Sequence[Path], stats: InputStats, workers: int
) -> Iterator[tuple[Sourced, list[int]]]:
    """Every matching event of ``files`` with its rule numbers, in input order, across ``workers``."""
    global _ENGINE
    _ENGINE = engine
    tasks = sorted(((i, str(p)) for i, p in enumerate(files)), key=lambda t: -_size(Path(t[1])))
    pending: dict[int, _FileResult] = {}
    next_position = 0
    context: Any = multiprocessing.get_context("fork")
    try:
        with context.Pool(workers) as pool:
            for result in pool.imap_unordered(_work, tasks):
                pending[result.position] = result
                while next_position in pending:
                    done = pending.pop(next_position)
                    next_position += 1
                    _merge(engine, stats, done)
                    yield from done.matches
    finally:
        _ENGINE = None


def _merge(engine: DetectionEngine, stats: InputStats, result: _FileResult) -> None:
    stats.files += result.stats.files
    stats.events += result.stats.events
    stats.bad_records += result.stats.bad_records
    stats.file_errors.extend(result.stats.file_errors)
    engine.stats.events += result.stats.events
    engine.stats.candidates += result.candidates
    engine.stats.rule_errors += result.rule_errors


def match_inputs(
    engine: DetectionEngine, inputs: Sequence[Path], stats: InputStats, workers: int = 0
) -> Iterator[tuple[Sourced, list[int]]]:
    """Matching events of all inputs in order: in this process, or over worker processes."""
    files = list(input_files(inputs))
    count = worker_count(workers, files)
    if count <= 1:
        for item in read_inputs(files, stats):
            matched = engine.match(item.event)
            if matched:
                yield item, matched
        return
    yield from match_files(engine, files, stats, count)

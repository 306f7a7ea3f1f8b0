"""Hunt over many files on every core: workers read and match, the parent keeps order and state.

Reading, normalising and matching an event needs no state, so forked workers (sharing the loaded
engine copy-on-write, no rule reload) do it in batches of consecutive files. Only matching events
travel back. The parent re-orders results to input order and does
the stateful part (correlations, output), so the answer is exactly the sequential one.
"""

from __future__ import annotations

import gc
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
BATCHES_PER_WORKER = 8
MAX_BATCH_FILES = 256

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


def batches(files: Sequence[Path], workers: int) -> list[list[tuple[int, str]]]:
    """``(position, path)`` tasks grouped into batches of consecutive files, in input order.

    One task per file costs the parent most of a millisecond of pool traffic; with thousands of
    small files that was a fifth of the hunt's CPU. A batch holds files up to an eighth of a
    worker's share of the bytes, so the cores still finish together, and batches run in input
    order, so the parent holds back only the few results that arrive ahead of their turn (run
    largest-first, it held nearly every matching event of the hunt until the first file's came).
    """
    sized = [(i, str(p), _size(p)) for i, p in enumerate(files)]
    target = max(sum(t[2] for t in sized) // (max(workers, 1) * BATCHES_PER_WORKER), 1)
    out: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    current_bytes = 0
    for position, path, size in sized:
        current.append((position, path))
        current_bytes += size
        if current_bytes >= target or len(current) >= MAX_BATCH_FILES:
            out.append(current)
            current, current_bytes = [], 0
    if current:
        out.append(current)
    return out


def _work_batch(batch: list[tuple[int, str]]) -> list[_FileResult]:
    return [_work(task) for task in batch]


def match_files(
    engine: DetectionEngine, files: Sequence[Path], stats: InputStats, workers: int
) -> Iterator[tuple[Sourced, list[int]]]:
    """Every matching event of ``files`` with its rule numbers, in input order, across ``workers``."""
    global _ENGINE
    _ENGINE = engine
    pending: dict[int, _FileResult] = {}
    next_position = 0
    context: Any = multiprocessing.get_context("fork")
    gc.freeze()  # workers' collections then never touch (so never copy) the engine's pages
    try:
        with context.Pool(workers) as pool:
            for results in pool.imap_unordered(_work_batch, batches(files, workers)):
                for result in results:
                    pending[result.position] = result
                while next_position in pending:
                    done = pending.pop(next_position)
                    next_position += 1
                    _merge(engine, stats, done)
                    yield from done.matches
    finally:
        _ENGINE = None
        gc.unfreeze()


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

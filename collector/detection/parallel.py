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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.detection.engine import DetectionEngine
from collector.detection.hunt_inputs import InputStats, Sourced, input_files, read_inputs

#: ``--workers 0`` forks only when the input left is estimated at this much CPU work: a worker
#: costs ~0.15 s of CPU (start, copy-on-write faults, sending matches back) and ~10-50 MiB, which
#: pays from about half a second of work on when a core is free; with no free core the bar rises
#: (see :func:`needed_seconds`) and small inputs stay in one process.
MIN_PARALLEL_SECONDS = 0.5
#: With half a core or more free (the load average also counts a hunt that just finished), inputs
#: of this size or more are spread over the cores from the start
#: (measured on the sample set, 20 MiB of EVTX: 1.15 s -> 0.90 s wall, tree PSS 60 -> 117 MiB);
#: otherwise the measured policy in :func:`match_inputs` decides.
MIN_SPREAD_BYTES = 16 << 20
#: ... estimated from the bytes/CPU-second rate of the files matched so far, once this much is done.
MIN_MEASURED_SECONDS = 0.2
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
    """Workers to use from the start: ``requested``, or 1 when it is 0 (automatic: see
    :func:`match_inputs`) or there is a single file."""
    return min(requested, len(files)) if requested > 1 else 1


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
    engine: DetectionEngine,
    files: Sequence[Path],
    stats: InputStats,
    workers: int,
    *,
    here: Sequence[Path] = (),
) -> Iterator[tuple[Sourced, list[int]]]:
    """Every matching event of ``here`` then ``files`` with its rule numbers, in input order:
    ``files`` across ``workers`` processes, ``here`` (the files before them) in this process
    meanwhile, so a machine's last core is used without a worker's memory."""
    global _ENGINE
    _ENGINE = engine
    pending: dict[int, _FileResult] = {}
    next_position = 0
    context: Any = multiprocessing.get_context("fork")
    gc.freeze()  # workers' collections then never touch (so never copy) the engine's pages
    try:
        with context.Pool(workers) as pool:
            # Tasks are handed out by the pool's own thread from now on, while this process matches.
            arriving = pool.imap_unordered(_work_batch, batches(files, workers))
            yield from _match_here(engine, here, stats)
            for results in arriving:
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


def _match_here(
    engine: DetectionEngine, files: Sequence[Path], stats: InputStats
) -> Iterator[tuple[Sourced, list[int]]]:
    for item in read_inputs(files, stats):
        matched = engine.match(item.event)
        if matched:
            yield item, matched


def _split(sizes: Sequence[int], share: float) -> int:
    """How many leading files (of these ``sizes``) make up ``share`` of their bytes."""
    target = sum(sizes) * share
    total = 0
    for i, size in enumerate(sizes):
        if total + size / 2 > target:
            return i
        total += size
    return len(sizes)


def own_share(match_rate: float, output_rate: float, helpers: int) -> float:
    """The part of the input this process should match itself while ``helpers`` workers match
    the rest, so all finish together: it alone also writes every match and keeps correlation
    state (``output_rate``, CPU per input byte, against ``match_rate`` for matching), so
    ``s * match + output = (1 - s) * match / helpers``. Never negative."""
    if match_rate <= 0:
        return 0.0
    return max((match_rate - output_rate * helpers) / (match_rate * (helpers + 1)), 0.0)


def free_cores(cores: int) -> float:
    """Cores the 1-minute load average leaves free (all of them where there is no load average)."""
    try:
        return cores - os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        return float(cores)


def needed_seconds(cores: int) -> float:
    """:data:`MIN_PARALLEL_SECONDS` over the share of a core that is free (1-minute load average):
    on a machine whose cores are busy a worker gains little and still costs its start and memory
    (on the sample set with no free core, forking cost 0.27 s of CPU and took nothing off)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        return MIN_PARALLEL_SECONDS
    return MIN_PARALLEL_SECONDS / min(max(cores - load, 0.25), 1.0)


def match_inputs(
    engine: DetectionEngine, inputs: Sequence[Path], stats: InputStats, workers: int = 0
) -> Iterator[tuple[Sourced, list[int]]]:
    """Matching events of all inputs in order: in this process, or over worker processes.

    ``workers`` 0 spreads an input of :data:`MIN_SPREAD_BYTES` or more over the cores at once when
    half a core or more is free. Otherwise it decides by measured work: files are matched here, one
    by one, until the rates so far (CPU per byte for matching, and for what the caller does with
    matches) say the files left hold at least :data:`MIN_PARALLEL_SECONDS` of matching. Then one
    worker per other core takes the last files while this process matches the first ones, as many
    as leave it done with them and with the output when the workers are done. Small inputs never
    fork; the answer is the same either way.
    """
    files = list(input_files(inputs))
    count = worker_count(workers, files)
    cores = os.cpu_count() or 1
    automatic = workers == 0 and cores > 1
    sizes = [_size(p) for p in files] if automatic else []
    if automatic and len(files) > 1 and sum(sizes) >= MIN_SPREAD_BYTES and free_cores(cores) >= 0.5:
        count = min(cores, len(files))  # cores are free and there is work enough: spread it at once
    if count > 1:
        yield from match_files(engine, files, stats, count)
        return
    left = sum(sizes)
    done = 0
    output = 0.0  # CPU the caller spent on the matches yielded so far
    started = time.process_time()
    for i, path in enumerate(files):
        for found in _match_here(engine, [path], stats):
            before = time.process_time()
            yield found
            output += time.process_time() - before
        if not automatic:
            continue
        done += sizes[i]
        left -= sizes[i]
        spent = time.process_time() - started
        rest = files[i + 1 :]
        match_rate = (spent - output) / max(done, 1)
        if len(rest) > 1 and spent >= MIN_MEASURED_SECONDS and left * match_rate >= needed_seconds(cores):
            helpers = min(cores - 1, len(rest) - 1)
            mine = min(_split(sizes[i + 1 :], own_share(match_rate, output / max(done, 1), helpers)), len(rest) - 1)
            yield from match_files(engine, rest[mine:], stats, helpers, here=rest[:mine])
            return

"""Hunt work is handed to workers in batches: every file exactly once, in input order, balanced."""

from __future__ import annotations

from pathlib import Path

from collector.detection.parallel import BATCHES_PER_WORKER, MAX_BATCH_FILES, batches


def _files(tmp_path: Path, sizes: list[int]) -> list[Path]:
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i:04d}.evtx"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


def test_every_file_once_in_input_order(tmp_path: Path) -> None:
    files = _files(tmp_path, [10, 5000, 7, 300, 300, 1, 9000, 42] * 5)
    got = [task for batch in batches(files, 2) for task in batch]
    assert got == [(i, str(p)) for i, p in enumerate(files)]


def test_many_small_files_share_batches_and_big_ones_stand_alone(tmp_path: Path) -> None:
    files = _files(tmp_path, [10] * 300 + [100_000] + [10] * 300)
    out = batches(files, 2)
    assert [(300, str(files[300]))] in out or any(batch[-1] == (300, str(files[300])) for batch in out)
    assert len(out) < 50  # not one task per file: pool traffic per task is what batching saves
    assert all(len(batch) <= MAX_BATCH_FILES for batch in out)


def test_even_sizes_give_enough_batches_to_balance(tmp_path: Path) -> None:
    files = _files(tmp_path, [1000] * 400)
    out = batches(files, 2)
    assert 2 * BATCHES_PER_WORKER <= len(out) <= 2 * BATCHES_PER_WORKER + 1


def test_empty_and_missing_files(tmp_path: Path) -> None:
    assert batches([], 2) == []
    missing = tmp_path / "gone.evtx"
    assert batches([missing], 2) == [[(0, str(missing))]]

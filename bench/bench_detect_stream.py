"""Benchmark the streaming detection path: ``DetectionEngine.process`` in batches of 1,000 events.

The events are the EVTX attack samples, read and normalised once up front (not timed). The same
batches go through an engine holding every SigmaHQ Windows rule plus the repo's ``rules/`` and
through an engine with no rules; the difference is what detection costs per event on the
collector. Each configuration runs ``--runs`` times on a fresh engine (so alert de-duplication
starts empty); medians are printed.

    .venv/bin/python bench/bench_detect_stream.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.windows.evtx_file import read_evtx  # noqa: E402
from collector.detection.loader import load_engine  # noqa: E402

SHARED = REPO / ".." / "shared" / "data"
SIGMA = SHARED / "sigma-rules"
EVTX = SHARED / "evtx-attack-samples"
BATCH = 1000


def windows_rules(out_dir: Path) -> Path:
    """Symlinks to every SigmaHQ rule for ``product: windows`` (as bench_hunt selects them)."""
    folder = out_dir / "windows-rules"
    folder.mkdir()
    n = 0
    for top in ("rules", "rules-threat-hunting", "rules-emerging-threats"):
        for path in sorted((SIGMA / top).rglob("*.yml")):
            if re.search(r"^\s+product:\s*windows\s*$", path.read_text(encoding="utf-8", errors="replace"), re.M):
                n += 1
                (folder / f"{n:05d}_{path.name}").symlink_to(path.resolve())
    return folder


def one_run(rule_paths: list[Path], cache: Path, batches: list[list[dict[str, Any]]]) -> tuple[float, float, int]:
    engine = load_engine(rule_paths, cache_dir=cache)
    alerts = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        alerts += len(engine.process(batch))
    return time.perf_counter() - wall, time.process_time() - cpu, alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    events = [e for path in sorted(EVTX.rglob("*.evtx")) for e in read_evtx(path)]
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        empty = work / "no-rules"
        empty.mkdir()
        configs = {"no rules": [empty], "SigmaHQ windows + rules/": [windows_rules(work), REPO / "rules"]}
        rows = []
        for name, paths in configs.items():
            engine = load_engine(paths, cache_dir=work / "cache")  # builds the cache: not timed
            runs = [one_run(paths, work / "cache", batches) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rows.append((name, len(engine.rules) + len(engine.correlations), wall, cpu, runs[0][2]))
    print(f"events: {len(events)} in batches of {BATCH}; median of {args.runs} runs")
    print(f"{'rules':<28}{'loaded':>8}{'wall_s':>9}{'cpu_s':>8}{'events/s':>10}{'us/event(cpu)':>15}{'alerts':>8}")
    for name, loaded, wall, cpu, alerts in rows:
        print(
            f"{name:<28}{loaded:>8}{wall:>9.2f}{cpu:>8.2f}{len(events) / wall:>10,.0f}"
            f"{cpu / len(events) * 1e6:>15.1f}{alerts:>8}"
        )
    cost = (rows[1][3] - rows[0][3]) / len(events) * 1e6
    print(f"detection cost per event (cpu, full rule set minus no rules): {cost:.1f} us")
    print(f"load average (1 min) after the runs: {os.getloadavg()[0]:.1f}; nproc {os.cpu_count()}")


if __name__ == "__main__":
    main()

"""Benchmark ``soc hunt`` over the EVTX attack samples with the SigmaHQ Windows rules.

Runs the real command (``python -m soc_common hunt``) in a child process: over one 1-event file
(start-up alone), over the 278 sample files as they are, and over the files repeated to about
100,000 events. Rule loading counts in the wall time. The
compiled-rule cache is warmed once first (``--cold`` skips that and measures a first run).
Memory: ``peak_rss_mib`` is the largest single process (ru_maxrss); ``tree_pss_mib`` is the peak
of the summed proportional set size of the hunt and its worker processes (sampled every 50 ms),
the honest total when forked workers share pages. ``cpu_s`` is user+system time of all of them,
``cpu_us_per_event`` that per event (rule loading included), the figure that holds on a loaded
machine where wall time does not; ``load`` is the 1-minute load average after the run.
``x_zircolite`` is events/s over Zircolite v3.7.0's figure on the same input and rules (1,466
events/s on the samples, 1,345 on ~99,000 events; ../shared/peers.md). Zircolite is one process;
every configuration of ``--workers`` (default: 1 and 0 = one per core) is measured side by side.
Prints a results table; ``--runs N`` repeats each measured run and prints medians.

    .venv/bin/python bench/bench_hunt.py [--repeat-to 100000] [--cold] [--runs 3] [--workers 1 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
SIGMA = SHARED / "sigma-rules"
EVTX = SHARED / "evtx-attack-samples"
TINY = EVTX / "Defense Evasion" / "DE_Powershell_CLM_Disabled_Sysmon_12.evtx"  # one event: start-up alone
ZIRCOLITE_SMALL_EPS = 1466  # events/s, samples as is (8,255 events)
ZIRCOLITE_BIG_EPS = 1345  # events/s, samples x12 (99,060 events)


def windows_rule_files(out_dir: Path) -> Path:
    """Symlinks to every Windows rule of rules/, rules-threat-hunting/ and rules-emerging-threats/."""
    folder = out_dir / "windows-rules"
    folder.mkdir()
    n = 0
    for top in ("rules", "rules-threat-hunting", "rules-emerging-threats"):
        for path in sorted((SIGMA / top).rglob("*.yml")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"^\s+product:\s*windows\s*$", text, re.MULTILINE):
                n += 1
                (folder / f"{n:05d}_{path.name}").symlink_to(path.resolve())
    return folder


def repeated_inputs(out_dir: Path, target_events: int, events_per_pass: int) -> Path:
    folder = out_dir / "repeated"
    folder.mkdir()
    copies = max(1, round(target_events / max(events_per_pass, 1)))
    files = sorted(EVTX.rglob("*.evtx"))
    for c in range(copies):
        for i, path in enumerate(files):
            (folder / f"{c:03d}_{i:03d}.evtx").symlink_to(path.resolve())
    return folder


def _tree_pss(proc: psutil.Process) -> int:
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_full_info().pss
    return total


def run(rules: Path, inputs: Path, cache: Path, workers: int) -> dict[str, str]:
    # Byte-code is cached (under the work folder) as on an installed system, where pip compiles it:
    # with PYTHONDONTWRITEBYTECODE every run recompiled our modules, ~0.08 s of each start.
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPYCACHEPREFIX=str(cache / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-m", "soc_common", "hunt", "--rules", str(rules), "--format", "jsonl"]
    cmd += ["--output", os.devnull]
    cmd += ["--workers", str(workers), str(inputs)]
    # A fresh wrapper per run, so RUSAGE_CHILDREN covers this run's hunt process (and its workers) alone.
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(r.returncode)"
    )
    start = time.perf_counter()
    proc = psutil.Popen(
        [sys.executable, "-c", wrapper, *cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak_pss = 0
    while proc.poll() is None:
        peak_pss = max(peak_pss, _tree_pss(proc) - _self_pss(proc))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    _, err = proc.communicate()
    lines = err.strip().splitlines()
    last = lines[-1].split() if lines else []
    peak_kib, cpu = (int(last[0]), float(last[1])) if len(last) == 2 else (0, 0.0)
    if proc.returncode != 0:
        sys.exit(f"hunt failed ({proc.returncode}): {err[-2000:]}")
    summary = lines[-2]
    events = int(re.search(r"events read: (\d+)", summary).group(1))  # type: ignore[union-attr]
    loaded = re.search(r"rules loaded: (\d+), skipped: (\d+)", summary)
    matches = re.search(r"matches: (\d+)", summary)
    return {
        "events": str(events),
        "wall_s": f"{wall:.2f}",
        "events_per_s": f"{events / wall:,.0f}",
        "cpu_s": f"{cpu:.2f}",
        "cpu_us_per_event": f"{cpu / max(events, 1) * 1e6:.0f}",
        "load": f"{os.getloadavg()[0]:.1f}",
        "peak_rss_mib": f"{peak_kib / 1024:.0f}",
        "tree_pss_mib": f"{peak_pss / 2**20:.0f}",
        "rules_loaded": loaded.group(1) if loaded else "?",
        "rules_skipped": loaded.group(2) if loaded else "?",
        "matches": matches.group(1) if matches else "?",
    }


def _self_pss(proc: psutil.Process) -> int:
    """The wrapper's own share (it only waits), left out of the tree's total."""
    try:
        return int(proc.memory_full_info().pss)
    except psutil.Error:
        return 0


def median_run(rules: Path, inputs: Path, cache: Path, workers: int, runs: int) -> dict[str, str]:
    """Median over ``runs`` by wall time (the whole row of the median run)."""
    results = [run(rules, inputs, cache, workers) for _ in range(runs)]
    walls = [float(r["wall_s"]) for r in results]
    return results[walls.index(statistics.median_low(walls))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat-to", type=int, default=100_000)
    parser.add_argument("--cold", action="store_true", help="do not warm the compiled-rule cache first")
    parser.add_argument("--runs", type=int, default=1, help="repeat each measured run; report the median")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 0], help="soc hunt --workers values to compare (0: automatic)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rules = windows_rule_files(work)
        cache = work / "cache"
        rows: list[tuple[str, dict[str, str]]] = []
        if not args.cold:
            rows.append(("first run (cache build)", run(rules, EVTX, cache, args.workers[-1])))
        rows.append(("start-up: one 1-event file", median_run(rules, TINY, cache, 1, max(args.runs, 5))))
        big: Path | None = None
        for workers in args.workers:
            small = median_run(rules, EVTX, cache, workers, args.runs)
            small["x_zircolite"] = _ratio(small, ZIRCOLITE_SMALL_EPS)
            rows.append((f"samples as is, -j {workers}", small))
            if big is None:
                big = repeated_inputs(work, args.repeat_to, int(small["events"]))
        for workers in args.workers:
            assert big is not None
            row = median_run(rules, big, cache, workers, args.runs)
            row["x_zircolite"] = _ratio(row, ZIRCOLITE_BIG_EPS)
            rows.append((f"repeated to ~{args.repeat_to:,}, -j {workers}", row))
    cols = ["events", "wall_s", "events_per_s", "x_zircolite", "cpu_s", "cpu_us_per_event", "load"]
    cols += ["peak_rss_mib", "tree_pss_mib", "rules_loaded", "rules_skipped", "matches"]
    print(f"{'run':<34}" + "".join(f"{c:>{max(len(c) + 2, 9)}}" for c in cols))
    for name, row in rows:
        print(f"{name:<34}" + "".join(f"{row.get(c, '-'):>{max(len(c) + 2, 9)}}" for c in cols))
    print(f"nproc {os.cpu_count()}, {_cpu_model()}; Zircolite is a single process")


def _ratio(row: dict[str, str], peer_eps: int) -> str:
    return f"{float(row['events_per_s'].replace(',', '')) / peer_eps:.2f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu model unknown"


if __name__ == "__main__":
    main()

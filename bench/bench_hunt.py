"""Benchmark ``soc hunt`` over the EVTX attack samples with the SigmaHQ Windows rules.

Runs the real command in a child process (so peak RSS is that process's, children included) twice:
over the 278 sample files as they are, and over the files repeated to about 100,000 events. Rule
loading counts in the wall time. The compiled-rule cache is warmed once first (``--cold`` skips
that and measures a first run). Prints a results table.

    .venv/bin/python bench/bench_hunt.py [--repeat-to 100000] [--cold]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
SIGMA = SHARED / "sigma-rules"
EVTX = SHARED / "evtx-attack-samples"


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


def run(rules: Path, inputs: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    entry = "import typer; from collector.detection.hunt import hunt_command; typer.run(hunt_command)"
    cmd = [
        sys.executable,
        "-c",
        entry,
        "--rules",
        str(rules),
        "--format",
        "jsonl",
        "--output",
        os.devnull,
        str(inputs),
    ]
    # A fresh wrapper per run, so RUSAGE_CHILDREN's peak is this run's hunt process alone.
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(r.returncode)"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    peak_kib = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    if proc.returncode != 0:
        sys.exit(f"hunt failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = lines[-2]
    events = int(re.search(r"events read: (\d+)", summary).group(1))  # type: ignore[union-attr]
    loaded = re.search(r"rules loaded: (\d+), skipped: (\d+)", summary)
    matches = re.search(r"matches: (\d+)", summary)
    return {
        "events": str(events),
        "wall_s": f"{wall:.2f}",
        "events_per_s": f"{events / wall:,.0f}",
        "peak_rss_mib": f"{peak_kib / 1024:.0f}",
        "rules_loaded": loaded.group(1) if loaded else "?",
        "rules_skipped": loaded.group(2) if loaded else "?",
        "matches": matches.group(1) if matches else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat-to", type=int, default=100_000)
    parser.add_argument("--cold", action="store_true", help="do not warm the compiled-rule cache first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rules = windows_rule_files(work)
        cache = work / "cache"
        rows: list[tuple[str, dict[str, str]]] = []
        if not args.cold:
            rows.append(("first run (cache build)", run(rules, EVTX, cache)))
        small = run(rules, EVTX, cache)
        rows.append(("samples as is", small))
        big = repeated_inputs(work, args.repeat_to, int(small["events"]))
        rows.append((f"repeated to ~{args.repeat_to:,}", run(rules, big, cache)))
    cols = ["events", "wall_s", "events_per_s", "peak_rss_mib", "rules_loaded", "rules_skipped", "matches"]
    print(f"{'run':<28}" + "".join(f"{c:>15}" for c in cols))
    for name, row in rows:
        print(f"{name:<28}" + "".join(f"{row[c]:>15}" for c in cols))


if __name__ == "__main__":
    main()

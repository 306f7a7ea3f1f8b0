"""EVTX reading and normalisation throughput over the shared attack samples.

Run: .venv/bin/python bench/bench_evtx.py [SAMPLES_DIR] [--repeat N]
Prints records/s for the parser alone (JSON and XML, per thread setting), for JSON decoding, for the
normaliser alone, and for read_evtx end to end (with the parser's XML or rendered XML as original).
Best of N repeats, because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evtx import PyEvtxParser

from agent.windows.evtx_file import EvtxStats, read_evtx
from agent.windows.normalize import normalize_event
from agent.windows.xml_record import xml_to_record

DEFAULT_SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "evtx-attack-samples"


def best(repeat: int, work: Callable[[], int]) -> tuple[int, float]:
    times = []
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = work()
        times.append(time.perf_counter() - start)
    return count, min(times)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("samples", nargs="?", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = [str(p) for p in sorted(args.samples.rglob("*.evtx"))]
    rows: list[tuple[str, int, float]] = []

    for threads in (0, 1, 2):
        for kind in ("records_json", "records"):

            def parse(kind: str = kind, threads: int = threads) -> int:
                return sum(sum(1 for _ in getattr(PyEvtxParser(f, number_of_threads=threads), kind)()) for f in files)

            rows.append((f"parser {kind}, threads={threads}", *best(args.repeat, parse)))

    raw_json: list[Any] = [r for f in files for r in PyEvtxParser(f, number_of_threads=1).records_json()]
    raw_xml: list[Any] = [r for f in files for r in PyEvtxParser(f, number_of_threads=1).records()]
    rows.append(("json.loads", *best(args.repeat, lambda: len([json.loads(r["data"]) for r in raw_json]))))
    decoded = [json.loads(r["data"]) for r in raw_json]
    originals = [r["data"] for r in raw_xml]
    rows.append(
        (
            "normalize_event (given XML original)",
            *best(
                args.repeat,
                lambda: len([normalize_event(d, original=o) for d, o in zip(decoded, originals, strict=True)]),
            ),
        )
    )
    rows.append(
        (
            "normalize_event (renders original)",
            *best(args.repeat, lambda: len([normalize_event(d) for d in decoded])),
        )
    )
    rows.append(
        (
            "xml_to_record + normalize (live path)",
            *best(args.repeat, lambda: len([normalize_event(xml_to_record(x), original=x) for x in originals])),
        )
    )

    def end_to_end(xml_original: bool) -> int:
        stats = EvtxStats()
        count = sum(1 for f in files for _ in read_evtx(f, stats=stats, xml_original=xml_original))
        assert stats.failed == 0
        return count

    rows.append(("read_evtx end to end (parser XML original)", *best(args.repeat, lambda: end_to_end(True))))
    rows.append(("read_evtx end to end (rendered original)", *best(args.repeat, lambda: end_to_end(False))))

    print(f"files: {len(files)}  nproc: {os.cpu_count()}  cpu: {cpu_model()}  python: {platform.python_version()}")
    print(f"{'stage':<46} {'records':>8} {'seconds':>8} {'records/s':>10}")
    for name, count, seconds in rows:
        print(f"{name:<46} {count:>8} {seconds:>8.3f} {count / seconds:>10.0f}")


if __name__ == "__main__":
    main()

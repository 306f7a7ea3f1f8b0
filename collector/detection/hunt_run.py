"""The work of ``soc hunt`` (no CLI framework here, so the command starts fast): load, match, write.

Same engine as the collector, so a hunt and the live pipeline give the same answers on the same
events. Output: ``jsonl`` (one line per match: rule, event, source; correlation matches carry the
last contributing event and the explanation under ``correlation``), ``table`` or ``csv``.
Exit codes: 0 done; 1 matches found with ``--fail-on-match``; 2 usage errors.
"""

from __future__ import annotations

import csv
import gc
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from collector.detection.engine import DetectionEngine
from collector.detection.hunt_inputs import InputStats, Sourced
from collector.detection.loader import default_cache_dir, load_engine
from collector.detection.parallel import match_inputs
from collector.detection.specs import RuleMeta

FORMATS = ("jsonl", "table", "csv")
CSV_COLUMNS = ["rule_id", "title", "level", "file", "record", "timestamp", "host", "summary"]


def _rule_dict(meta: RuleMeta) -> dict[str, Any]:
    return {"id": meta.id, "title": meta.title, "level": meta.level, "tags": list(meta.tags)}


def _summary(event: dict[str, Any]) -> str:
    from soc_common.ecs import get

    for path in (
        "process.command_line",
        "winlog.event_data.CommandLine",
        "message",
        "event.action",
        "event.code",
    ):
        value = get(event, path)
        if value:
            return str(value)[:160].replace("\n", " ")
    return ""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Writer:
    def __init__(self, fmt: str, out: IO[str]) -> None:
        self.fmt = fmt
        self.out = out
        self.count = 0
        self._csv = csv.writer(out) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        elif fmt == "table":
            out.write(f"{'level':<9} {'rule':<50} {'host':<20} {'file:record':<40} summary\n")
        self._item: Sourced | None = None  # the event last serialised, and its JSON
        self._item_json = ""
        self._rule_json: dict[RuleMeta, str] = {}

    def _jsonl(self, meta: RuleMeta, item: Sourced, correlation: dict[str, Any] | None) -> str:
        """``json.dumps({"rule", "event", "source"[, "correlation"]})`` plus a newline, byte for
        byte, with the event serialised once however many rules it matched (events are large)."""
        if item is not self._item:
            self._item = item
            self._item_json = (
                f'"event": {_dumps(item.event)}, "source": {_dumps({"file": item.file, "record": item.record})}'
            )
        rule_json = self._rule_json.get(meta)
        if rule_json is None:
            rule_json = self._rule_json[meta] = _dumps(_rule_dict(meta))
        tail = "}\n" if correlation is None else f', "correlation": {_dumps(correlation)}}}\n'
        return f'{{"rule": {rule_json}, {self._item_json}{tail}'

    def write(self, meta: RuleMeta, item: Sourced, correlation: dict[str, Any] | None = None) -> None:
        from collector.detection.event_facts import host_of
        from soc_common.ecs import get

        self.count += 1
        event = item.event
        if self.fmt == "jsonl":
            self.out.write(self._jsonl(meta, item, correlation))
            return
        host = host_of(event) or ""
        summary = _summary(event)
        if correlation is not None:
            summary = f"correlation {correlation.get('type')} observed={correlation.get('observed')} " + json.dumps(
                correlation.get("group_by", {}), ensure_ascii=False
            )
        if self._csv is not None:
            row = [
                meta.id,
                meta.title,
                meta.level,
                item.file,
                item.record,
                get(event, "@timestamp"),
                host,
                summary,
            ]
            self._csv.writerow(row)
        else:
            where = f"{Path(item.file).name}:{item.record}"
            self.out.write(f"{meta.level:<9} {meta.title[:50]:<50} {host[:20]:<20} {where[:40]:<40} {summary}\n")


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as progress:
        yield progress


def run_hunt(
    engine: DetectionEngine,
    inputs: list[Path],
    writer: _Writer,
    stats: InputStats,
    *,
    show_progress: bool,
    workers: int = 1,
) -> None:
    """Stream every input event through ``engine`` and write each match, in input order.

    ``workers`` > 1 (or 0: one per core for big inputs) matches in forked processes; correlation
    state and output stay in this one, so the result is the same as with one worker.
    """
    with _progress(show_progress) as progress:
        task = progress.add_task("events: 0", total=None) if progress is not None else None
        shown = 0
        for item, matched in match_inputs(engine, inputs, stats, workers):
            evaluation = engine.record(item.event, matched)
            for meta in evaluation.matches:
                writer.write(meta, item)
            for firing in evaluation.firings:
                writer.write(firing.spec.meta, item, {**firing.explanation, "event_ids": firing.event_ids})
            if progress is not None and stats.events - shown >= 1000:
                shown = stats.events
                progress.update(task, description=f"events: {stats.events}  matches: {writer.count}")


@dataclass
class HuntOptions:
    """What ``soc hunt`` was asked to do (the command line, parsed)."""

    inputs: list[Path]
    rules: list[Path]
    fmt: str = "table"
    status: list[str] | None = None
    level: list[str] | None = None
    output: Path | None = None
    skipped_report: Path | None = None
    fail_on_match: bool = False
    no_cache: bool = False
    workers: int = 0


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def execute(opts: HuntOptions) -> int:
    """Run a hunt; returns the exit code (0 done, 1 matches with ``fail_on_match``, 2 usage)."""
    if opts.fmt not in FORMATS:
        _err(f"--format must be one of {', '.join(FORMATS)}")
        return 2
    missing = [str(p) for p in [*opts.rules, *opts.inputs] if not p.exists()]
    if missing:
        _err(f"not found: {', '.join(missing)}")
        return 2
    started = time.perf_counter()
    gc.disable()
    try:
        engine = load_engine(
            list(opts.rules),
            status_filter=opts.status,
            level_filter=opts.level,
            cache_dir=None if opts.no_cache else default_cache_dir(),
        )
        # The rules live as long as this process: kept out of every collection from now on
        # (~140,000 objects; the first collection after loading alone cost ~40 ms).
        gc.freeze()
    finally:
        gc.enable()
    report = engine.report
    skipped = report.skipped if report is not None else []
    for item in skipped:
        _err(f"skipped rule {item.title} ({item.path}): {item.reason}")
    if opts.skipped_report is not None:
        with opts.skipped_report.open("w", encoding="utf-8") as fh:
            for item in skipped:
                fh.write(json.dumps(item.as_dict(), ensure_ascii=False) + "\n")
    loaded_at = time.perf_counter()
    stats = InputStats()
    output = opts.output
    out: IO[str] = output.open("w", encoding="utf-8", newline="") if output is not None else sys.stdout
    try:
        writer = _Writer(opts.fmt, out)
        run_hunt(engine, list(opts.inputs), writer, stats, show_progress=sys.stderr.isatty(), workers=opts.workers)
    finally:
        if output is not None:
            out.close()
        else:
            out.flush()
    done = time.perf_counter()
    for error in stats.file_errors:
        _err(f"input error: {error}")
    rate = stats.events / (done - started) if done > started else 0.0
    _err(
        f"events read: {stats.events} (bad records: {stats.bad_records}) from {stats.files} files; "
        f"rules loaded: {len(engine.rules) + len(engine.correlations)}, skipped: {len(skipped)}; "
        f"matches: {writer.count}; load {loaded_at - started:.2f}s, total {done - started:.2f}s, "
        f"{rate:.0f} events/s"
    )
    return 1 if opts.fail_on_match and writer.count else 0

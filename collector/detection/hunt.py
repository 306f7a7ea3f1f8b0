"""``soc hunt``: evaluate Sigma rules (single-event and correlations) over files, offline, streaming.

Same engine as the collector, so a hunt and the live pipeline give the same answers on the same
events. Output: ``jsonl`` (one line per match: rule, event, source; correlation matches carry the
last contributing event and the explanation under ``correlation``), ``table`` or ``csv``.
Exit codes: 0 done; 1 matches found with ``--fail-on-match``; 2 usage errors.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer

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


def hunt_command(
    inputs: Annotated[list[Path], typer.Argument(help="Files or directories: .evtx, JSON, logs, .pcap.")],
    rules: Annotated[list[Path], typer.Option("--rules", "-r", help="Sigma rule file or directory (repeatable).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl | table | csv")] = "table",
    status: Annotated[list[str] | None, typer.Option("--status", help="Only rules with this status.")] = None,
    level: Annotated[list[str] | None, typer.Option("--level", help="Only rules with this level.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write matches here.")] = None,
    skipped_report: Annotated[
        Path | None, typer.Option("--skipped-report", help="Write skipped rules (JSON lines).")
    ] = None,
    fail_on_match: Annotated[bool, typer.Option("--fail-on-match", help="Exit 1 when anything matched.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the compiled-rule cache.")] = False,
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=0, help="Processes matching events (0: one per core if it pays).")
    ] = 0,
) -> None:
    """Evaluate Sigma rules over files, offline."""
    if fmt not in FORMATS:
        typer.echo(f"--format must be one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    missing = [str(p) for p in [*rules, *inputs] if not p.exists()]
    if missing:
        typer.echo(f"not found: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    started = time.perf_counter()
    engine = load_engine(
        list(rules),
        status_filter=status,
        level_filter=level,
        cache_dir=None if no_cache else default_cache_dir(),
    )
    report = engine.report
    skipped = report.skipped if report is not None else []
    for item in skipped:
        typer.echo(f"skipped rule {item.title} ({item.path}): {item.reason}", err=True)
    if skipped_report is not None:
        with skipped_report.open("w", encoding="utf-8") as fh:
            for item in skipped:
                fh.write(json.dumps(item.as_dict(), ensure_ascii=False) + "\n")
    loaded_at = time.perf_counter()
    stats = InputStats()
    out: IO[str] = output.open("w", encoding="utf-8", newline="") if output is not None else sys.stdout
    try:
        writer = _Writer(fmt, out)
        run_hunt(engine, list(inputs), writer, stats, show_progress=sys.stderr.isatty(), workers=workers)
    finally:
        if output is not None:
            out.close()
    done = time.perf_counter()
    for error in stats.file_errors:
        typer.echo(f"input error: {error}", err=True)
    rate = stats.events / (done - started) if done > started else 0.0
    typer.echo(
        f"events read: {stats.events} (bad records: {stats.bad_records}) from {stats.files} files; "
        f"rules loaded: {len(engine.rules) + len(engine.correlations)}, skipped: {len(skipped)}; "
        f"matches: {writer.count}; load {loaded_at - started:.2f}s, total {done - started:.2f}s, "
        f"{rate:.0f} events/s",
        err=True,
    )
    if fail_on_match and writer.count:
        raise typer.Exit(1)

"""``soc hunt``: evaluate Sigma rules (single-event and correlations) over files, offline, streaming.

Same engine as the collector, so a hunt and the live pipeline give the same answers on the same
events. Output: ``jsonl`` (one line per match: rule, event, source; correlation matches carry the
last contributing event and the explanation under ``correlation``), ``table`` or ``csv``.
Exit codes: 0 done; 1 matches found with ``--fail-on-match``; 2 usage errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from collector.detection.hunt_run import CSV_COLUMNS, FORMATS, HuntOptions, execute, run_hunt

__all__ = ["CSV_COLUMNS", "FORMATS", "hunt_command", "run_hunt"]


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
    code = execute(
        HuntOptions(
            inputs=list(inputs),
            rules=list(rules),
            fmt=fmt,
            status=status,
            level=level,
            output=output,
            skipped_report=skipped_report,
            fail_on_match=fail_on_match,
            no_cache=no_cache,
            workers=workers,
        )
    )
    if code:
        raise typer.Exit(code)

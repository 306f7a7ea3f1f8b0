"""Read hunt inputs as a stream of ECS events: .evtx, JSON (object, array, lines, exported Windows
events), syslog/auth-log text and .pcap/.pcapng; directories recursed.

Readers are imported lazily (they belong to the agent and soc_common parsers). Everything streams
(one record at a time) except a JSON file holding a single array or object, which is parsed whole.
A bad record or file is counted in :class:`InputStats` and skipped; the good ones around it stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soc_common.ecs import Event

EVTX_SUFFIXES = {".evtx"}
PCAP_SUFFIXES = {".pcap", ".pcapng", ".cap"}
JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}


@dataclass
class InputStats:
    files: int = 0
    events: int = 0
    bad_records: int = 0
    file_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sourced:
    """An event and where it came from (file and record number, 1-based)."""

    event: Event
    file: str
    record: int


def input_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            yield path


def _from_json_value(value: Any) -> Event:
    """A decoded JSON object -> ECS event; exported Windows events go through the normaliser."""
    if isinstance(value, Mapping) and isinstance(value.get("Event"), Mapping) and "System" in value["Event"]:
        from agent.windows.normalize import normalize_event

        return normalize_event(value)
    if isinstance(value, dict):
        return value
    raise ValueError(f"JSON {type(value).__name__} is not an event object")


def _read_json(path: Path, stats: InputStats) -> Iterator[Event]:
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        try:
            data = json.loads(path.read_bytes())
        except ValueError:
            data = None
        if isinstance(data, list):
            for item in data:
                try:
                    yield _from_json_value(item)
                except ValueError:
                    stats.bad_records += 1
            return
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        text_head = fh.read(1)
        fh.seek(0)
        if text_head == "{":
            whole: Any = None
            try:  # a single (possibly pretty-printed) object
                whole = json.loads(fh.read())
            except ValueError:
                fh.seek(0)
            if whole is not None:
                try:
                    yield _from_json_value(whole)
                except ValueError:
                    stats.bad_records += 1
                return
        for line in fh:
            if not line.strip():
                continue
            try:
                yield _from_json_value(json.loads(line))
            except ValueError:
                stats.bad_records += 1


def _read_text(path: Path, stats: InputStats) -> Iterator[Event]:
    from soc_common.parsers import parse_line

    with path.open("rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            event = parse_line(line)
            if event.get("soc", {}).get("parse_error"):
                stats.bad_records += 1
            yield event


def _read_evtx(path: Path, stats: InputStats) -> Iterator[Event]:
    from agent.windows.evtx_file import EvtxStats, read_evtx

    evtx_stats = EvtxStats()
    yield from read_evtx(path, stats=evtx_stats)
    stats.bad_records += getattr(evtx_stats, "failed", 0) or 0
    stats.file_errors.extend(getattr(evtx_stats, "file_errors", []))


def _read_pcap(path: Path, stats: InputStats) -> Iterator[Event]:
    from agent.flows import events_from_pcap

    yield from events_from_pcap(path)


def _reader(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix in EVTX_SUFFIXES:
        return _read_evtx
    if suffix in PCAP_SUFFIXES:
        return _read_pcap
    if suffix in JSON_SUFFIXES:
        return _read_json
    return _read_text


def read_inputs(paths: Sequence[Path], stats: InputStats) -> Iterator[Sourced]:
    """Every event of every input, in order, with its origin; never raises on bad input."""
    for path in input_files(paths):
        stats.files += 1
        record = 0
        try:
            for event in _reader(path)(path, stats):
                record += 1
                stats.events += 1
                yield Sourced(event, str(path), record)
        except ImportError as exc:
            stats.file_errors.append(f"{path}: reader not available ({exc})")
        except Exception as exc:  # unreadable/corrupt file: keep what was read, go on
            stats.file_errors.append(f"{path}: {type(exc).__name__}: {exc}")

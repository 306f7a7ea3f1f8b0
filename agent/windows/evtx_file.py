"""Read ``.evtx`` files into ECS events for offline hunting and ``soc agent import-evtx``.

The Rust ``evtx`` parser does the binary work; each record's JSON goes through the same normaliser
as the live source. Every record is accounted for: it becomes an event or it is counted as failed
with a reason, and a corrupt or truncated file yields every record that can still be read.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.windows.normalize import normalize_event
from soc_common.ecs import Event
from soc_common.parsers.json_codec import loads as _loads  # orjson when installed: 3x on records

#: Small files are the norm (one chunk is 64 KiB); one parser thread avoids a thread-pool start per
#: file and measured fastest over the sample corpus (see bench/bench_evtx.py).
DEFAULT_THREADS = 1

#: A file that keeps failing without yielding anything is garbage, not a file with a bad record.
MAX_CONSECUTIVE_FAILURES = 10_000


_BETWEEN_TAGS = re.compile(r">\s+<")


def compact_xml(xml: str) -> str:
    """The parser's pretty-printed XML without the declaration and indentation.

    Text content escapes ``<`` and ``>``, so ``>`` + whitespace + ``<`` only occurs between tags
    (or around a whitespace-only value, which then reads as empty: accepted for ``event.original``).
    """
    if xml.startswith("<?xml"):
        xml = xml[xml.find("?>") + 2 :]
    return _BETWEEN_TAGS.sub("><", xml.strip())


class _XmlTwin:
    """The same file read a second time as XML, looked up by record id.

    Rendering XML from the JSON in Python costs several times more than letting the Rust parser
    make it, so ``event.original`` comes from a second, lock-step pass over the file.
    """

    def __init__(self, name: str, threads: int) -> None:
        from evtx import PyEvtxParser

        try:
            self._records: Any = PyEvtxParser(name, number_of_threads=threads).records()
        except (OSError, RuntimeError, ValueError):
            self._records = None
        self._pending: dict[object, str] = {}

    def get(self, record_id: object) -> str | None:
        found = self._pending.pop(record_id, None)
        failures = 0
        while found is None and self._records is not None and failures < MAX_CONSECUTIVE_FAILURES:
            try:
                record = next(self._records)
            except StopIteration:
                self._records = None
                break
            except Exception:
                failures += 1
                continue
            rid, data = record.get("event_record_id"), record.get("data")
            if not isinstance(data, str):
                continue
            if rid == record_id:
                return compact_xml(data)
            if len(self._pending) < 1024:
                self._pending[rid] = data
        return compact_xml(found) if found is not None else None


@dataclass
class EvtxStats:
    """What a read did: records seen, events produced, and why the rest failed."""

    files: int = 0
    records: int = 0
    events: int = 0
    failed: int = 0
    #: events produced but missing parts (they carry ``soc.parse_error``)
    partial: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: file-level problems: unreadable, not an EVTX file, gave up on corruption
    file_errors: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.records += 1
        self.failed += 1
        self.reasons[reason[:200]] += 1


def _reason(exc: BaseException) -> str:
    """A short, groupable reason: the parser's message without the varying record number/offset."""
    text = str(exc).split("\n", 1)[0]
    if text.startswith("Failed to parse record number"):
        text = text.split(":", 1)[-1].strip()
    return f"{type(exc).__name__}: {text}"


def read_evtx(
    path: str | os.PathLike[str],
    *,
    stats: EvtxStats | None = None,
    threads: int = DEFAULT_THREADS,
    xml_original: bool = True,
) -> Iterator[Event]:
    """Yield one ECS event per readable record of ``path``; count the others in ``stats``.

    ``event.original`` is the record's XML (the parser's own rendering, compacted) when
    ``xml_original`` is set, else XML rendered from the JSON record (slower, same content).
    """
    from evtx import PyEvtxParser

    stats = stats if stats is not None else EvtxStats()
    stats.files += 1
    name = str(Path(path))
    try:
        records: Any = PyEvtxParser(name, number_of_threads=threads).records_json()
    except (OSError, RuntimeError, ValueError) as exc:
        stats.file_errors.append(f"{name}: {_reason(exc)}")
        return
    twin = _XmlTwin(name, threads) if xml_original else None
    consecutive_failures = 0
    while True:
        try:
            record: Any = next(records)
        except StopIteration:
            return
        except Exception as exc:  # the parser raises per bad record and then carries on
            stats.fail(_reason(exc))
            consecutive_failures += 1
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                stats.file_errors.append(f"{name}: gave up after {consecutive_failures} unreadable records")
                return
            continue
        consecutive_failures = 0
        try:
            parsed = _loads(record["data"])
        except (KeyError, TypeError, ValueError) as exc:
            stats.fail(f"record JSON unreadable: {type(exc).__name__}")
            continue
        if not isinstance(parsed, dict):
            stats.fail("record JSON is not an object")
            continue
        original = twin.get(record.get("event_record_id")) if twin is not None else None
        event = normalize_event(parsed, original=original)
        stats.records += 1
        stats.events += 1
        if "soc" in event and "parse_error" in event["soc"]:
            stats.partial += 1
        event.setdefault("log", {})["file"] = {"path": name}
        yield event


def read_evtx_files(paths: list[str | os.PathLike[str]], *, stats: EvtxStats | None = None) -> Iterator[Event]:
    """All events of several files in order, one ``stats`` for the lot."""
    stats = stats if stats is not None else EvtxStats()
    for path in paths:
        yield from read_evtx(path, stats=stats)

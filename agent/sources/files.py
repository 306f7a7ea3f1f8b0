"""Tail log files into ECS events, surviving rotation and restarts without loss or duplication.

Files are identified by (device, inode), checked against a fingerprint of their first bytes so a
reused inode or a truncated-and-refilled file is noticed. An open file handle is kept for every
tracked file, so after a rename (logrotate ``create``) or a delete the old file is still read to its
end before it is closed, and its inode cannot be reused underneath us meanwhile. A shrinking file
(logrotate ``copytruncate``) is read again from 0 under a new generation.

Positions are committed only after ``emit`` returns (the events are in the spool) and point at the
start of the first record not yet emitted: a partial last line or an unfinished multi-line record is
simply read again after a restart. ``event.id`` is derived from (host, file identity, offset, text),
so whatever is re-read after a crash is a duplicate the collector drops. Lines without a time of
their own share their batch's read time, saved with the batch's ends before ``emit``, so a re-read
repeats their ``@timestamp`` too (see ``FilePosition.pending_time``).
"""

from __future__ import annotations

import codecs
import fnmatch
import glob
import hashlib
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from agent.sources.base import Emit, Source
from agent.sources.offsets import FilePosition, OffsetRegistry, machine_identity
from soc_common.config import Section, data_dir_default
from soc_common.ecs import Event, add_tag, stable_event_id
from soc_common.parsers import INVALID_UTF8_TAG, ParseOptions, parse_with_options
from soc_common.parsers.common import now_iso

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
READ_CHUNK = 256 * 1024
READ_BUDGET_PER_FILE = 8 * 1024 * 1024  # per poll, so one busy file cannot starve the others
LINE_SPLIT_TAG = "_line_split"
MULTILINE_SPLIT_TAG = "_multiline_split"
PARTIAL_LINE_TAG = "_partial_line"
#: what the parsers put in ``@timestamp`` of a line without a time; replaced by a read time, found by ``is``
_READ_TIME = "<read time>"

#: codec names (as ``codecs.lookup`` spells them) in which every ASCII byte is that character
_ASCII_SUPERSETS = frozenset({"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1250", "cp1252", "cp1258"})

LogFormat = Literal["auto", "authlog", "syslog", "access", "nginx", "apache", "json", "raw"]


class FileSourceSettings(Section):
    """``[[sources]] type = "files"``."""

    paths: list[str] = Field(min_length=1, description="glob patterns (``**`` allowed)")
    exclude: list[str] = Field(
        default_factory=lambda: ["*.gz", "*.bz2", "*.xz", "*.zst", "*.zip"],
        description="glob patterns matched against the full path or the file name",
    )
    format: LogFormat = "auto"
    multiline: str | None = Field(default=None, description="regex a record's first line matches")
    multiline_max_lines: int = Field(default=500, ge=1)
    multiline_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    multiline_timeout: float = Field(default=2.0, gt=0, description="flush an idle multi-line record")
    encoding: str = "utf-8"
    start_at: Literal["beginning", "end"] = Field(
        default="end", description="where to start files found at this source's very first run"
    )
    poll_interval: float = Field(default=0.5, gt=0)
    batch_lines: int = Field(default=1000, ge=1)
    max_line_bytes: int = Field(default=1024 * 1024, ge=256)
    close_rotated_after: float = Field(
        default=5.0, ge=0, description="keep a renamed/deleted file open this long after its last write"
    )
    timezone: str | None = Field(default=None, description="zone of timestamps without one; default: host")
    tags: list[str] = Field(default_factory=list)
    fields: dict[str, str] = Field(default_factory=dict, description="extra labels (``labels.*``)")
    offsets_file: str | None = Field(default=None, description="default: <data dir>/agent/offsets/<name>.json")

    @field_validator("multiline")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _valid_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


@dataclass(slots=True)
class _Record:
    start: int
    end: int
    lines: list[str]
    nbytes: int
    invalid: bool
    tags: list[str]
    updated: float


@dataclass(slots=True)
class _Tracked:
    """A file being read: its committed position plus what has been read but not yet emitted."""

    fh: BinaryIO
    pos: FilePosition
    read_pos: int
    size: int
    last_growth: float
    buf: bytearray = field(default_factory=bytearray)
    buf_start: int = 0
    pending: _Record | None = None
    gone_since: float | None = None

    @property
    def identity(self) -> str:
        return f"{self.pos.dev}:{self.pos.ino}:{self.pos.generation}"


class FileSource(Source):
    """Tails the files matching ``settings.paths``; see the module docstring for the guarantees."""

    type = "files"
    settings_model = FileSourceSettings

    def __init__(
        self,
        name: str,
        settings: FileSourceSettings,
        *,
        state_dir: Path | str | None = None,
        host_id: str | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self.host_id = host_id or machine_identity()
        if settings.offsets_file:
            registry_path = Path(settings.offsets_file)
        else:
            base = Path(state_dir) if state_dir is not None else data_dir_default() / "agent" / "offsets"
            registry_path = base / f"files-{_safe_name(name)}.json"
        self.registry = OffsetRegistry(registry_path)
        zone: tzinfo | None = ZoneInfo(settings.timezone) if settings.timezone else None
        self._opts = ParseOptions(tz=zone, read_time=_READ_TIME)
        self._multiline = re.compile(settings.multiline) if settings.multiline else None
        self._decoder_name = settings.encoding
        # ASCII text decodes the same in these, so whole blocks of it can be split at once
        self._block_split = self._multiline is None and codecs.lookup(settings.encoding).name in _ASCII_SUPERSETS
        self._tracked: dict[str, _Tracked] = {}
        self._batch: list[Event] = []
        self._batch_ends: dict[str, int] = {}
        self._batch_time: str | None = None  # read time of the batch's lines without a time
        self._dirty = False
        self._status_lock = threading.Lock()
        self._status_files: list[dict[str, Any]] = []
        self.counters = {
            "events": 0,
            "invalid_utf8": 0,
            "parse_failures": 0,
            "lines_split": 0,
            "rotations": 0,
        }

    # --- main loop ----------------------------------------------------------------------------

    def run(self, emit: Emit, stop: threading.Event) -> None:
        first_run = not self.registry.path.exists()
        saved = self.registry.load()
        if self.registry.load_error:
            self._error(self.registry.load_error)
        try:
            self._resume(saved, first_run)
            while not stop.is_set():
                more = self._poll(emit)
                self._publish_status()
                if not more:
                    stop.wait(self.settings.poll_interval)
        finally:
            for tracked in self._tracked.values():
                tracked.fh.close()
            self._tracked.clear()
            self._batch.clear()
            self._batch_ends.clear()
            self._batch_time = None

    def _resume(self, saved: dict[str, FilePosition], first_run: bool) -> None:
        """Open discovered files at their saved positions; find files rotated while we were down."""
        now = time.monotonic()
        for path, st in self._discover().items():
            key = f"{st.st_dev}:{st.st_ino}"
            self._open(path, st, saved.pop(key, None), start_at_end=first_run and self.settings.start_at == "end")
        for pos in saved.values():
            rotated = self._find_rotated(pos)
            if rotated is None:
                log.info("files[%s]: %s is gone; forgetting its position", self.name, pos.path)
                continue
            st = os.stat(rotated)
            tracked = self._open(rotated, st, pos, start_at_end=False)
            if tracked is not None:
                tracked.gone_since = now
        self._dirty = True

    def _poll(self, emit: Emit) -> bool:
        """One pass over every file; True if a file had more to read than its budget."""
        now = time.monotonic()
        discovered = self._discover()
        seen: set[str] = set()
        for path, st in discovered.items():
            key = f"{st.st_dev}:{st.st_ino}"
            seen.add(key)
            tracked = self._tracked.get(key)
            if tracked is None:
                self._open(path, st, None, start_at_end=False)
            elif tracked.pos.path != path:
                tracked.pos.path = path  # renamed within the watched patterns
                self._dirty = True
        more = False
        # Oldest first: a rotated file is finished before its successor is read.
        for key, tracked in sorted(self._tracked.items(), key=lambda kv: self._age_key(kv[1])):
            if key not in seen and tracked.gone_since is None:
                tracked.gone_since = now
                self.counters["rotations"] += 1
            try:
                more |= self._read_file(tracked, emit, now)
            except OSError as exc:
                self._error(f"{tracked.pos.path}: {exc}")
        self._flush(emit)
        self._close_finished(emit, now)
        if self._dirty:
            self._save()
        return more

    @staticmethod
    def _age_key(tracked: _Tracked) -> tuple[int, float, str]:
        try:
            mtime = os.fstat(tracked.fh.fileno()).st_mtime
        except OSError:
            mtime = 0.0
        return (0 if tracked.gone_since is not None else 1, mtime, tracked.pos.path)

    # --- discovery and identity ---------------------------------------------------------------

    def _discover(self) -> dict[str, os.stat_result]:
        found: dict[str, os.stat_result] = {}
        keys: set[tuple[int, int]] = set()
        for pattern in self.settings.paths:
            for path in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
                if self._excluded(path):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in keys:
                    continue
                keys.add((st.st_dev, st.st_ino))
                found[path] = st
        return found

    def _excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(name, pat) for pat in self.settings.exclude)

    def _find_rotated(self, pos: FilePosition) -> str | None:
        """A file we were reading, renamed while the agent was down (``auth.log`` -> ``auth.log.1``)."""
        directory, base = os.path.split(pos.path)
        try:
            names = os.listdir(directory or ".")
        except OSError:
            return None
        for name in names:
            if not name.startswith(base) or name == base:
                continue
            candidate = os.path.join(directory, name)
            if self._excluded(candidate):
                continue
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (pos.dev, pos.ino):
                return candidate
        return None

    def _open(
        self, path: str, st: os.stat_result, saved: FilePosition | None, *, start_at_end: bool
    ) -> _Tracked | None:
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - kept open across polls on purpose
        except OSError as exc:
            self._error(f"{path}: {exc}")
            return None
        try:
            st = os.fstat(fh.fileno())
            fp_len = min(st.st_size, FINGERPRINT_BYTES)
            fp = _fingerprint(fh, fp_len)
            if saved is not None and saved.fp_len <= st.st_size and _fingerprint(fh, saved.fp_len) == saved.fp:
                pos = saved
                pos.path = path
                if pos.offset > st.st_size:  # truncated while we were away
                    pos.generation += 1
                    pos.offset = 0
                    pos.clear_pending()
                pos.fp_len, pos.fp = fp_len, fp
            else:
                generation = saved.generation + 1 if saved is not None else 0
                offset = _tail_start(fh, st.st_size) if start_at_end else 0
                pos = FilePosition(path, st.st_dev, st.st_ino, offset, fp_len, fp, generation)
        except OSError as exc:
            fh.close()
            self._error(f"{path}: {exc}")
            return None
        tracked = _Tracked(fh, pos, pos.offset, st.st_size, time.monotonic(), buf_start=pos.offset)
        self._tracked[pos.key] = tracked
        self._dirty = True
        return tracked

    def _check_identity(self, tracked: _Tracked, size: int, emit: Emit) -> None:
        """Notice copytruncate (shrunk) or content replaced in place (first bytes differ)."""
        pos = tracked.pos
        replaced = size < tracked.read_pos
        if not replaced and size != tracked.size and pos.fp_len:
            replaced = _fingerprint(tracked.fh, pos.fp_len) != pos.fp
        if replaced:
            self.counters["rotations"] += 1
            self._finish_held(tracked, emit)
            self._flush(emit)  # commit the old content before positions restart at 0
            pos.generation += 1
            pos.offset = tracked.read_pos = tracked.buf_start = 0
            pos.clear_pending()
            tracked.buf.clear()
            pos.fp_len, pos.fp = 0, _fingerprint(tracked.fh, 0)
            self._dirty = True
        if pos.fp_len < FINGERPRINT_BYTES and size > pos.fp_len:
            pos.fp_len = min(size, FINGERPRINT_BYTES)
            pos.fp = _fingerprint(tracked.fh, pos.fp_len)
            self._dirty = True
        tracked.size = size

    # --- reading ------------------------------------------------------------------------------

    def _read_file(self, tracked: _Tracked, emit: Emit, now: float) -> bool:
        size = os.fstat(tracked.fh.fileno()).st_size
        self._check_identity(tracked, size, emit)
        budget = READ_BUDGET_PER_FILE
        while budget > 0:
            tracked.fh.seek(tracked.read_pos)
            chunk = tracked.fh.read(min(READ_CHUNK, budget))
            if not chunk:
                break
            tracked.read_pos += len(chunk)
            budget -= len(chunk)
            tracked.last_growth = now
            tracked.buf += chunk
            self._split_lines(tracked, emit, now)
        pending = tracked.pending
        if pending is not None and now - pending.updated >= self.settings.multiline_timeout:
            tracked.pending = None
            self._add_record(tracked, pending, emit)
        return budget <= 0

    def _split_lines(self, tracked: _Tracked, emit: Emit, now: float) -> None:
        buf = tracked.buf
        start = self._split_ascii_block(tracked, emit) if self._block_split else 0
        limit = self.settings.max_line_bytes
        while True:
            newline = buf.find(b"\n", start)
            if newline < 0:
                break
            end = newline + 1
            if newline - start > limit:
                newline = end = start + limit
                split = True
            else:
                split = False
            raw = bytes(buf[start:newline])
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            tags = [LINE_SPLIT_TAG] if split else []
            self._feed(tracked, tracked.buf_start + start, tracked.buf_start + end, raw, emit, now, tags)
            start = end
        while len(buf) - start >= limit:  # an endless line: cut it rather than hold unbounded memory
            raw = bytes(buf[start : start + limit])
            end = tracked.buf_start + start + limit
            self._feed(tracked, tracked.buf_start + start, end, raw, emit, now, [LINE_SPLIT_TAG])
            start += limit
        if start:
            del buf[:start]
            tracked.buf_start += start

    def _split_ascii_block(self, tracked: _Tracked, emit: Emit) -> int:
        """Turn every complete line of ``tracked.buf`` into an event in one pass, if that is simple.

        The common case (no multi-line grouping, an ASCII-compatible encoding, pure ASCII text, no
        line over the limit) needs none of the per-line machinery of :meth:`_feed`: the block is
        decoded and split once in C, and offsets follow from the line lengths. Returns how many
        bytes were consumed (0 when the block is not simple; the per-line path then reads it). A
        re-read of lines emitted before a crash is left to the per-line path, which handles its end.
        """
        buf = tracked.buf
        if tracked.pos.pending_time is not None:
            return 0
        last = buf.rfind(b"\n")
        if last < 0 or last > self.settings.max_line_bytes:
            return 0
        block = bytes(buf[:last])
        if not block.isascii():
            return 0
        key = tracked.pos.key
        identity = tracked.identity
        offset = tracked.buf_start
        batch = self._batch
        ends = self._batch_ends
        full = self.settings.batch_lines
        for line in block.decode("ascii").split("\n"):
            end = offset + len(line) + 1
            if line.endswith("\r"):
                line = line[:-1]
            if line:
                batch.append(self._make_event(tracked, identity, offset, end, line, False, ()))
                ends[key] = end
                if len(batch) >= full:
                    self._flush(emit)
                    batch = self._batch
                    ends = self._batch_ends
            else:
                self._advance_empty(tracked, offset, end)
            offset = end
        return last + 1

    def _feed(
        self, tracked: _Tracked, start: int, end: int, raw: bytes, emit: Emit, now: float, tags: list[str]
    ) -> None:
        """Hand one line to the multi-line assembler (or straight out when there is none)."""
        text, invalid = self._decode(raw)
        if LINE_SPLIT_TAG in tags:
            self.counters["lines_split"] += 1
        if self._multiline is None:
            if text:
                self._add_record(tracked, _Record(start, end, [text], len(raw), invalid, tags, now), emit)
            else:
                self._advance_empty(tracked, start, end)
            return
        pending = tracked.pending
        starts_record = self._multiline.match(text) is not None
        if pending is not None and not starts_record:
            over = (
                len(pending.lines) >= self.settings.multiline_max_lines
                or pending.nbytes + len(raw) > self.settings.multiline_max_bytes
            )
            if not over:
                pending.lines.append(text)
                pending.end = end
                pending.nbytes += len(raw) + 1
                pending.invalid |= invalid
                pending.tags.extend(t for t in tags if t not in pending.tags)
                pending.updated = now
                return
            tags.append(MULTILINE_SPLIT_TAG)
        if pending is not None:
            self._add_record(tracked, pending, emit)
        tracked.pending = _Record(start, end, [text], len(raw), invalid, tags, now)

    def _advance_empty(self, tracked: _Tracked, start: int, end: int) -> None:
        """An empty line yields no event, but the committed position may move past it."""
        key = tracked.pos.key
        if key in self._batch_ends:
            if self._batch_ends[key] == start:
                self._batch_ends[key] = end
        elif tracked.pos.offset == start:
            tracked.pos.offset = end
            self._dirty = True

    def _decode(self, raw: bytes) -> tuple[str, bool]:
        try:
            return raw.decode(self._decoder_name), False
        except UnicodeDecodeError:
            return raw.decode(self._decoder_name, errors="replace"), True

    def _finish_held(self, tracked: _Tracked, emit: Emit) -> None:
        """Turn what is held back (a partial last line, an open multi-line record) into records.

        Only for a file that will not grow again as it is: rotated away, deleted or truncated.
        """
        now = time.monotonic()
        if tracked.buf:
            raw = bytes(tracked.buf)
            start = tracked.buf_start
            tracked.buf.clear()
            tracked.buf_start = start + len(raw)
            line = raw[:-1] if raw.endswith(b"\r") else raw
            self._feed(tracked, start, start + len(raw), line, emit, now, [PARTIAL_LINE_TAG])
        if tracked.pending is not None:
            record, tracked.pending = tracked.pending, None
            self._add_record(tracked, record, emit)

    # --- events and commits -------------------------------------------------------------------

    def _add_record(self, tracked: _Tracked, record: _Record, emit: Emit) -> None:
        pos = tracked.pos
        if pos.pending_time is not None and record.end > pos.pending_end:
            self._end_reread(tracked, emit)
        self._batch_record(tracked, record)
        if len(self._batch) >= self.settings.batch_lines:
            self._flush(emit)

    def _end_reread(self, tracked: _Tracked, emit: Emit) -> None:
        """Past the lines emitted before a crash: later lines get fresh read times.

        The re-read lines are emitted first, so a batch holds one read time per file, the one saved.
        """
        if tracked.pos.key in self._batch_ends:
            self._flush(emit)
        tracked.pos.clear_pending()

    def _batch_record(self, tracked: _Tracked, record: _Record) -> None:
        self._batch.append(self._event(tracked, record))
        self._batch_ends[tracked.pos.key] = record.end

    def _event(self, tracked: _Tracked, record: _Record) -> Event:
        text = record.lines[0] if len(record.lines) == 1 else "\n".join(record.lines)
        return self._make_event(tracked, tracked.identity, record.start, record.end, text, record.invalid, record.tags)

    def _make_event(
        self,
        tracked: _Tracked,
        identity: str,
        start: int,
        end: int,
        text: str,
        invalid: bool,
        tags: Sequence[str],
    ) -> Event:
        event = parse_with_options(text, self.settings.format, self._opts)
        if event["@timestamp"] is _READ_TIME:
            event["@timestamp"] = self._read_time(tracked.pos, end)
        event["event"]["id"] = stable_event_id(self.host_id, identity, start, text)
        log_field = event.get("log")
        if not isinstance(log_field, dict):
            log_field = event["log"] = {}
        log_field["file"] = {"path": tracked.pos.path}
        log_field["offset"] = start
        if invalid:
            add_tag(event, INVALID_UTF8_TAG)
            self.counters["invalid_utf8"] += 1
        for tag in tags:
            add_tag(event, tag)
        for tag in self.settings.tags:
            add_tag(event, tag)
        if self.settings.fields:
            labels = event.get("labels")
            if not isinstance(labels, dict):
                labels = event["labels"] = {}
            labels.update(self.settings.fields)
        if "soc" in event and isinstance(event["soc"], dict) and "parse_error" in event["soc"]:
            self.counters["parse_failures"] += 1
        return event

    def _read_time(self, pos: FilePosition, end: int) -> str:
        """``@timestamp`` of a line without one: its saved time if emitted before a crash, else the batch's.

        The batch's read time is taken at its first such line, so batches without any cost nothing.
        """
        if pos.pending_time is not None and end <= pos.pending_end:
            return pos.pending_time
        if self._batch_time is None:
            self._batch_time = now_iso()
        return self._batch_time

    def _flush(self, emit: Emit) -> None:
        """Emit the batch, then commit each file's position past what it contained.

        A batch with a new read time saves it first, with each file's batch end, so that a crash
        between ``emit`` and the commit re-reads those lines with the same time (one extra save).
        """
        if not self._batch:
            return
        if self._batch_time is not None:
            for key, end in self._batch_ends.items():
                tracked = self._tracked.get(key)
                if tracked is not None and tracked.pos.pending_time is None:  # else: a re-read keeps its own
                    tracked.pos.pending_time, tracked.pos.pending_end = self._batch_time, end
            self._save()
        emit(self._batch)
        self.counters["events"] += len(self._batch)
        for key, end in self._batch_ends.items():
            tracked = self._tracked.get(key)
            if tracked is not None:
                tracked.pos.offset = end
                if end >= tracked.pos.pending_end:
                    tracked.pos.clear_pending()
        self._batch = []
        self._batch_ends = {}
        self._batch_time = None
        self._save()

    def _close_finished(self, emit: Emit, now: float) -> None:
        """Close renamed/deleted files once read to the end and quiet for ``close_rotated_after``."""
        grace = self.settings.close_rotated_after
        done = [
            key
            for key, t in self._tracked.items()
            if t.gone_since is not None
            and t.read_pos >= t.size
            and now - t.last_growth >= grace
            and now - t.gone_since >= grace
        ]
        if not done:
            return
        for key in done:
            self._finish_held(self._tracked[key], emit)
        self._flush(emit)
        for key in done:
            tracked = self._tracked.pop(key)
            tracked.fh.close()
        self._dirty = True

    def _save(self) -> None:
        try:
            self.registry.save([t.pos for t in self._tracked.values()])
            self._dirty = False
        except OSError as exc:
            self._error(f"cannot save offsets to {self.registry.path}: {exc}")

    # --- status -------------------------------------------------------------------------------

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning("files[%s]: %s", self.name, message)

    def _publish_status(self) -> None:
        files = [
            {
                "path": t.pos.path,
                "offset": t.pos.offset,
                "size": t.size,
                "lag_bytes": max(t.size - t.pos.offset, 0),
                "rotated": t.gone_since is not None,
            }
            for t in self._tracked.values()
        ]
        with self._status_lock:
            self._status_files = files

    def status(self) -> dict[str, Any]:
        out = super().status()
        with self._status_lock:
            out["files"] = list(self._status_files)
        out.update(self.counters)
        out["lag_bytes"] = sum(f["lag_bytes"] for f in out["files"])
        return out


def _fingerprint(fh: BinaryIO, length: int) -> str:
    fh.seek(0)
    data = fh.read(length) if length else b""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _tail_start(fh: BinaryIO, size: int) -> int:
    """Offset just after the last complete line, so a line still being written is read whole."""
    if size == 0:
        return 0
    look = min(size, 64 * 1024)
    fh.seek(size - look)
    data = fh.read(look)
    newline = data.rfind(b"\n")
    if newline < 0:
        return 0 if look == size else size
    return size - look + newline + 1


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "files"

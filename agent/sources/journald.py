"""Read the systemd journal through ``journalctl -o json --follow`` (no python-systemd dependency).

The cursor of the last emitted entry is saved right after ``emit`` returns and passed back as
``--after-cursor`` on restart, so nothing is lost or read twice; ``event.id`` derives from the
cursor, so whatever is re-read anyway is a duplicate the collector drops. Messages from auth programs
(sshd, sudo, su, useradd ...) also go through the auth-log parser and become ``system.auth``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import subprocess
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from agent.sources.base import Emit, Source
from agent.sources.offsets import CursorStore, machine_identity
from soc_common.config import Section, data_dir_default
from soc_common.ecs import ECS_VERSION, Event, add_tag, iso, stable_event_id
from soc_common.parsers import INVALID_UTF8_TAG, enrich_auth
from soc_common.parsers.syslog import FACILITY_NAMES, SEVERITY_NAMES

log = logging.getLogger(__name__)

DATASET = "journald"
_KNOWN = frozenset(
    {"MESSAGE", "PRIORITY", "SYSLOG_FACILITY", "SYSLOG_IDENTIFIER", "SYSLOG_PID", "SYSLOG_TIMESTAMP",
     "__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "__SEQNUM", "__SEQNUM_ID"}
)  # fmt: skip
_FIELD_NAME = re.compile(r"^[A-Z0-9_]+$")


class JournaldSettings(Section):
    """``[[sources]] type = "journald"``."""

    units: list[str] = Field(default_factory=list, description="only these systemd units (-u)")
    identifiers: list[str] = Field(default_factory=list, description="only these SYSLOG_IDENTIFIERs (-t)")
    directory: str | None = Field(default=None, description="read journal files from this folder (-D)")
    files: list[str] = Field(default_factory=list, description="read these journal files (--file)")
    start_at: Literal["beginning", "end"] = "end"
    batch_size: int = Field(default=500, ge=1)
    flush_interval: float = Field(default=1.0, gt=0)
    restart_backoff: float = Field(default=5.0, gt=0, description="wait before restarting journalctl")
    journalctl: str = "journalctl"
    tags: list[str] = Field(default_factory=list)
    fields: dict[str, str] = Field(default_factory=dict)
    cursor_file: str | None = None


class JournaldSource(Source):
    type = "journald"
    settings_model = JournaldSettings

    def __init__(
        self,
        name: str,
        settings: JournaldSettings,
        *,
        state_dir: Path | str | None = None,
        host_id: str | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self.host_id = host_id or machine_identity()
        if settings.cursor_file:
            cursor_path = Path(settings.cursor_file)
        else:
            base = Path(state_dir) if state_dir is not None else data_dir_default() / "agent" / "offsets"
            cursor_path = base / f"journald-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.cursor"
        self.cursor_store = CursorStore(cursor_path)
        self.cursor: str | None = None
        self.counters = dict.fromkeys(("events", "bad_records", "restarts"), 0)

    def command(self) -> list[str]:
        """The journalctl invocation for the current cursor."""
        s = self.settings
        cmd = [s.journalctl, "--output=json", "--follow", "--all", "--no-pager", "--quiet"]
        if s.directory:
            cmd.append(f"--directory={s.directory}")
        cmd.extend(f"--file={f}" for f in s.files)
        cmd.extend(f"--unit={u}" for u in s.units)
        cmd.extend(f"--identifier={i}" for i in s.identifiers)
        if self.cursor:
            cmd.append(f"--after-cursor={self.cursor}")
        elif s.start_at == "end":
            cmd.append("--lines=0")
        else:
            cmd.append("--since=1970-01-01 00:00:01")
        return cmd

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self.cursor = self.cursor_store.load()
        while not stop.is_set():
            try:
                self._follow(emit, stop)
            except OSError as exc:
                self._error(f"cannot run journalctl: {exc}")
            if not stop.is_set():
                self.counters["restarts"] += 1
                stop.wait(self.settings.restart_backoff)

    def _follow(self, emit: Emit, stop: threading.Event) -> None:
        proc = subprocess.Popen(  # fixed argv, no shell
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None and proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        pending = b""
        batch: list[Event] = []
        batch_cursor: str | None = None
        first_at = 0.0
        try:
            while not stop.is_set():
                ready = selector.select(timeout=0.1)
                if ready:
                    chunk = os.read(proc.stdout.fileno(), 1 << 20)
                    if not chunk:
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        event, cursor = self._convert(line)
                        if event is None:
                            continue
                        if not batch:
                            first_at = time.monotonic()
                        batch.append(event)
                        batch_cursor = cursor or batch_cursor
                        if len(batch) >= self.settings.batch_size:
                            self._emit(emit, batch, batch_cursor)
                            batch = []
                if batch and time.monotonic() - first_at >= self.settings.flush_interval:
                    self._emit(emit, batch, batch_cursor)
                    batch = []
            if batch:
                self._emit(emit, batch, batch_cursor)
        finally:
            selector.close()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.stdout.close()
            proc.stderr.close()
        if not stop.is_set():
            self._error(f"journalctl exited with {proc.returncode}: {err[:500]}")

    def _emit(self, emit: Emit, batch: list[Event], cursor: str | None) -> None:
        emit(batch)
        self.counters["events"] += len(batch)
        if cursor:
            self.cursor = cursor
            try:
                self.cursor_store.save(cursor)
            except OSError as exc:
                self._error(f"cannot save the journal cursor: {exc}")

    def _convert(self, line: bytes) -> tuple[Event | None, str | None]:
        if not line.strip():
            return None, None
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self.counters["bad_records"] += 1
            self._error(f"unreadable journalctl output: {exc}")
            return None, None
        event = journal_record_to_event(record, self.host_id)
        for tag in self.settings.tags:
            add_tag(event, tag)
        if self.settings.fields:
            event.setdefault("labels", {}).update(self.settings.fields)
        cursor = record.get("__CURSOR")
        return event, cursor if isinstance(cursor, str) else None

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning("journald[%s]: %s", self.name, message)

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(self.counters)
        out["cursor"] = self.cursor
        return out


def journal_record_to_event(record: Mapping[str, Any], host_id: str = "") -> Event:
    """Map one ``journalctl -o json`` record to ECS; never raises on odd field values."""
    invalid = False

    def text(name: str) -> str | None:
        nonlocal invalid
        value, bad = _field_text(record.get(name))
        invalid |= bad
        return value

    message = text("MESSAGE") or ""
    cursor = text("__CURSOR")
    event: Event = {
        "@timestamp": _timestamp(text("__REALTIME_TIMESTAMP")),
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "dataset": DATASET, "original": message},
        "message": message,
    }
    if cursor:
        event["event"]["id"] = stable_event_id(host_id, "journald", cursor)
    hostname = text("_HOSTNAME")
    if hostname:
        event["host"] = {"hostname": hostname}
    process: dict[str, Any] = {}
    name = text("SYSLOG_IDENTIFIER") or text("_COMM")
    if name:
        process["name"] = name
    pid = text("_PID") or text("SYSLOG_PID")
    if pid and pid.isdecimal():
        process["pid"] = int(pid)
    for field, target in (("_EXE", "executable"), ("_CMDLINE", "command_line")):
        value = text(field)
        if value:
            process[target] = value
    if process:
        event["process"] = process
    syslog: dict[str, Any] = {}
    priority = text("PRIORITY")
    if priority and priority.isdecimal() and int(priority) < 8:
        code = int(priority)
        syslog["severity"] = {"code": code, "name": SEVERITY_NAMES[code]}
        event["log"] = {"level": SEVERITY_NAMES[code]}
    facility = text("SYSLOG_FACILITY")
    if facility and facility.isdecimal() and int(facility) < len(FACILITY_NAMES):
        syslog["facility"] = {"code": int(facility), "name": FACILITY_NAMES[int(facility)]}
    if name:
        syslog["appname"] = name
    if syslog:
        event.setdefault("log", {})["syslog"] = syslog
    journald = _journald_fields(record, text)
    if cursor:
        journald["cursor"] = cursor
    event["journald"] = journald
    if invalid:
        add_tag(event, INVALID_UTF8_TAG)
    uid = text("_UID")
    if not enrich_auth(event) and uid:
        event["user"] = {"id": uid}  # for auth messages user.* is the account acted on, not the logger
    return event


def _journald_fields(record: Mapping[str, Any], text: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    mapping = {
        "_SYSTEMD_UNIT": "unit",
        "_SYSTEMD_USER_UNIT": "user_unit",
        "_SYSTEMD_SLICE": "slice",
        "_TRANSPORT": "transport",
        "_BOOT_ID": "boot_id",
        "_MACHINE_ID": "machine_id",
        "_GID": "gid",
        "_UID": "uid",
        "_SYSTEMD_CGROUP": "cgroup",
        "CODE_FILE": "code_file",
        "CODE_FUNC": "code_func",
    }
    for field, target in mapping.items():
        value = text(field)
        if value:
            out[target] = value
    custom: dict[str, str] = {}
    for key in record:
        if key.startswith("_") or key in _KNOWN or key in mapping or not _FIELD_NAME.match(key):
            continue
        value = text(key)
        if value is not None:
            custom[key.lower()] = value
    if custom:
        out["custom"] = custom
    return out


def _field_text(value: Any) -> tuple[str | None, bool]:
    """journalctl prints binary values as byte arrays and repeated fields as lists."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return value, False
    if isinstance(value, list) and value and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        data = bytes(value)
        try:
            return data.decode("utf-8"), False
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace"), True
    if isinstance(value, list) and value:
        return _field_text(value[-1])  # a repeated field: the last value wins
    return str(value), False


def _timestamp(micros: str | None) -> str:
    if micros and micros.isdecimal():
        try:
            return iso(datetime.fromtimestamp(int(micros) / 1_000_000, UTC))
        except (OverflowError, OSError, ValueError):
            pass
    return iso(datetime.now(UTC))

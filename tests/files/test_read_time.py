"""A line without a time of its own keeps its first read time when it is read again after a crash.

The stores know an event by (``@timestamp``, ``event.id``): the id of a re-read line is stable, so
its ``@timestamp`` must be too, or the collector keeps both copies. These tests crash a real
FileSource between ``emit`` and the commit of its offsets (an ``emit`` that raises after taking the
batch, and a child process killed with SIGKILL inside ``emit``), restart on the same registry and
compare what was delivered twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.sources.files import FileSource, FileSourceSettings
from agent.sources.offsets import OffsetRegistry
from soc_common.ecs import Event

REPO_ROOT = Path(__file__).resolve().parents[2]


class Crash(Exception):
    """The agent dies right after the spool took a batch, before the offsets are committed."""


def _settings(*paths: Path, **overrides: Any) -> FileSourceSettings:
    values: dict[str, Any] = {
        "paths": [str(p) for p in paths],
        "start_at": "beginning",
        "poll_interval": 0.02,
        "timezone": "UTC",
        "batch_lines": 4,
    }
    values.update(overrides)
    return FileSourceSettings(**values)


def _source(tmp_path: Path, settings: FileSourceSettings) -> FileSource:
    return FileSource("t", settings, state_dir=tmp_path / "state", host_id="h1")


def _registry(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "state" / "files-t.json").read_text()))


def _run_crashing(tmp_path: Path, settings: FileSourceSettings, crash_at: int) -> list[list[Event]]:
    """Run until the ``crash_at``-th emit, which is spooled and then crashes; returns the batches."""
    batches: list[list[Event]] = []

    def emit(batch: Sequence[Event]) -> None:
        batches.append(list(batch))
        if len(batches) == crash_at:
            raise Crash

    with pytest.raises(Crash):
        _source(tmp_path, settings).run(emit, threading.Event())
    return batches


def _run_until(tmp_path: Path, settings: FileSourceSettings, count: int) -> list[Event]:
    """A restarted source, run until it has emitted ``count`` events."""
    got: list[Event] = []
    stop = threading.Event()

    def emit(batch: Sequence[Event]) -> None:
        got.extend(batch)
        if len(got) >= count:
            stop.set()

    thread = threading.Thread(target=_source(tmp_path, settings).run, args=(emit, stop), daemon=True)
    thread.start()
    thread.join(timeout=10)
    stop.set()
    assert not thread.is_alive(), f"got {len(got)} of {count} events"
    return got


def _identity(events: Sequence[Event]) -> list[tuple[str, str, str]]:
    """What the stores key on, plus the line for readable failures."""
    return [(e["@timestamp"], e["event"]["id"], e["event"]["original"]) for e in events]


def _read_time(batch: Sequence[Event]) -> str:
    """The one read time a batch gave its lines without a time."""
    (stamp,) = {e["@timestamp"] for e in batch if not e["event"]["original"].startswith("Jan")}
    return str(stamp)


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_reread_after_crash_repeats_timestamp_and_id(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        'plain 0\nJan  5 10:00:01 web01 app[1]: timed 1\nplain 2\n{"msg": "json 3"}\n'
        'plain 4\nJan  5 10:00:05 web01 app[1]: timed 5\n{"msg": "json 6"}\nplain 7\n'
    )
    batch_1, crashed = _run_crashing(tmp_path, _settings(log), crash_at=2)
    (at_crash,) = _registry(tmp_path)["files"]
    size_at_crash = log.stat().st_size

    time.sleep(0.01)  # the clock moves on: a fresh read time would differ
    _append(log, "plain 8\nplain 9\n")
    again = _run_until(tmp_path, _settings(log), 6)

    assert _identity(again[:4]) == _identity(crashed)
    assert crashed[1]["@timestamp"].endswith("-01-05T10:00:05.000Z")  # a line's own time is untouched
    crashed_time = _read_time(crashed)  # one read time per batch
    assert _read_time(batch_1) <= crashed_time
    assert at_crash["offset"] == sum(len(e["event"]["original"]) + 1 for e in batch_1)  # batch 2 uncommitted
    assert (at_crash.get("pending_time"), at_crash.get("pending_end")) == (crashed_time, size_at_crash)
    fresh = {e["@timestamp"] for e in again[4:]}
    assert len(fresh) == 1 and fresh.pop() > crashed_time
    assert [e["event"]["original"] for e in again[4:]] == ["plain 8", "plain 9"]
    (entry,) = _registry(tmp_path)["files"]
    assert entry["offset"] == log.stat().st_size
    assert entry["pending_time"] is None  # cleared once the offsets moved past it


def test_a_second_crash_during_the_reread_keeps_the_first_time(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"raw {i}\n" for i in range(8)))
    _, crashed = _run_crashing(tmp_path, _settings(log, format="raw"), crash_at=2)

    time.sleep(0.01)
    _append(log, "raw 8\nraw 9\n")
    # a batch big enough for the re-read and the new lines: they still go out in separate batches
    (second,) = _run_crashing(tmp_path, _settings(log, format="raw", batch_lines=6), crash_at=1)
    assert _identity(second) == _identity(crashed)

    time.sleep(0.01)
    third = _run_until(tmp_path, _settings(log, format="raw", batch_lines=6), 6)
    assert _identity(third[:4]) == _identity(crashed)
    assert all(e["@timestamp"] > crashed[0]["@timestamp"] for e in third[4:])


def test_read_time_is_saved_before_emit_only_for_batches_that_need_it(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    timed = "".join(f"Jan  5 10:00:0{i} web01 app[1]: timed {i}\n" for i in range(4))
    log.write_text(timed + "raw 4\nraw 5\n")
    registry = tmp_path / "state" / "files-t.json"
    seen: list[dict[str, Any] | None] = []
    batches: list[list[Event]] = []
    stop = threading.Event()

    def emit(batch: Sequence[Event]) -> None:
        seen.append(json.loads(registry.read_text()) if registry.exists() else None)
        batches.append(list(batch))
        if len(batches) == 2:
            stop.set()

    _source(tmp_path, _settings(log, format="syslog")).run(emit, stop)
    assert seen[0] is None  # only timed lines: nothing written before the emit
    assert seen[1] is not None
    (entry,) = seen[1]["files"]
    assert (entry["offset"], entry["pending_end"]) == (len(timed), log.stat().st_size)
    assert entry["pending_time"] == _read_time(batches[1])


def test_multiline_records_are_restamped_after_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"START {i}\n cont {i}\n" for i in range(6)) + "START 6\n")
    settings = _settings(log, format="raw", batch_lines=2, multiline="^START", multiline_timeout=30)
    _, crashed = _run_crashing(tmp_path, settings, crash_at=2)
    assert [e["event"]["original"] for e in crashed] == ["START 2\n cont 2", "START 3\n cont 3"]

    time.sleep(0.01)
    _append(log, " cont 6\nSTART 7\n")
    again = _run_until(tmp_path, settings, 5)
    assert _identity(again[:2]) == _identity(crashed)
    assert [e["event"]["original"] for e in again[2:]] == [f"START {i}\n cont {i}" for i in (4, 5, 6)]
    assert all(e["@timestamp"] > crashed[0]["@timestamp"] for e in again[2:])


def test_file_rotated_while_down_is_restamped_and_its_successor_is_fresh(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("".join(f"old {i}\n" for i in range(8)))
    settings = _settings(log, format="raw")
    _, crashed = _run_crashing(tmp_path, settings, crash_at=2)

    time.sleep(0.01)
    os.rename(log, tmp_path / "auth.log.1")
    _append(tmp_path / "auth.log.1", "late 8\n")
    log.write_text("new 0\n")
    again = _run_until(tmp_path, settings, 6)
    assert _identity(again[:4]) == _identity(crashed)
    assert {e["log"]["file"]["path"] for e in again[:4]} == {str(tmp_path / "auth.log.1")}
    assert sorted(e["event"]["original"] for e in again[4:]) == ["late 8", "new 0"]
    assert all(e["@timestamp"] > crashed[0]["@timestamp"] for e in again[4:])


def test_truncated_while_down_forgets_the_saved_time(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [f"line {i:03d} " + "x" * 90 + "\n" for i in range(30)]  # 100 bytes each
    log.write_text("".join(lines))
    settings = _settings(log, format="raw", batch_lines=15)
    _, crashed = _run_crashing(tmp_path, settings, crash_at=2)  # offset 1500 committed, 3000 pending

    time.sleep(0.01)
    with open(log, "r+b") as fh:  # same first bytes, shorter than the committed offset
        fh.truncate(1200)
    again = _run_until(tmp_path, settings, 12)
    assert [e["event"]["original"] for e in again] == [line[:-1] for line in lines[:12]]
    assert all(e["@timestamp"] > crashed[0]["@timestamp"] for e in again)  # new content, new read time
    assert not {e["event"]["id"] for e in again} & {e["event"]["id"] for e in crashed}


def test_registry_without_pending_fields_still_loads(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a 0\na 1\n")
    settings = _settings(log, format="raw")
    assert len(_run_until(tmp_path, settings, 2)) == 2
    registry = tmp_path / "state" / "files-t.json"
    doc = json.loads(registry.read_text())
    for entry in doc["files"]:  # what the agent wrote before pending times existed
        del entry["pending_time"], entry["pending_end"]
    registry.write_text(json.dumps(doc))
    (old,) = OffsetRegistry(registry).load().values()
    assert (old.offset, old.pending_time, old.pending_end) == (8, None, 0)

    _append(log, "a 2\n")
    again = _run_until(tmp_path, settings, 1)
    assert [e["event"]["original"] for e in again] == ["a 2"]


def test_registry_drops_a_pending_time_that_is_not_text(tmp_path: Path) -> None:
    registry = tmp_path / "offsets.json"
    entry = {"path": "/x", "dev": 1, "ino": 2, "offset": 3, "fp_len": 0, "fp": "", "pending_time": 5, "pending_end": 9}
    registry.write_text(json.dumps({"version": 1, "files": [entry]}))
    (pos,) = OffsetRegistry(registry).load().values()
    assert pos.pending_time is None and pos.offset == 3


_CHILD = """
import json, os, sys, threading, time
from agent.sources.files import FileSource, FileSourceSettings

log, state, spool, marker = sys.argv[1:5]
calls = 0

def emit(batch):
    global calls
    calls += 1
    with open(spool, "a", encoding="utf-8") as fh:  # the agent's durable spool
        fh.write("".join(json.dumps(e) + "\\n" for e in batch))
        fh.flush()
        os.fsync(fh.fileno())
    if calls == 2:
        open(marker, "w").close()
        time.sleep(60)  # killed here: spooled, offsets not committed

settings = FileSourceSettings(paths=[log], start_at="beginning", poll_interval=0.02, batch_lines=4, format="raw")
FileSource("t", settings, state_dir=state, host_id="h1").run(emit, threading.Event())
"""


def test_sigkill_between_spool_and_commit(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(8)))
    spool, marker = tmp_path / "spool.jsonl", tmp_path / "in-emit"
    args = [str(log), str(tmp_path / "state"), str(spool), str(marker)]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *args], cwd=REPO_ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never reached its second emit"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stderr:
            child.stderr.close()
    spooled = [json.loads(line) for line in spool.read_text().splitlines()]
    assert len(spooled) == 8

    time.sleep(0.01)
    _append(log, "line 8\n")
    again = _run_until(tmp_path, _settings(log, format="raw"), 5)
    assert _identity(again[:4]) == _identity(spooled[4:])
    assert again[4]["event"]["original"] == "line 8"
    assert again[4]["@timestamp"] > spooled[4]["@timestamp"]

"""The block fast path of FileSource (whole ASCII chunks split at once) must emit exactly what the
per-line path emits: same events, ids, offsets and committed positions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.sources.files import FileSource, FileSourceSettings
from soc_common.ecs import Event

AUTH = [
    "Mar  3 10:00:{s:02d} pc-01 sshd[{i}]: Failed password for invalid user u{i} from 203.0.113.{n} port {p} ssh2",
    "Mar  3 10:00:{s:02d} pc-01 sudo:   admin : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/ls {i}",
    "Mar  3 10:00:{s:02d} pc-01 CRON[{i}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    "Mar  3 10:00:{s:02d} pc-01 sshd[{i}]: Accepted publickey for bob from 10.0.0.{n} port {p} ssh2: ED25519 SHA256:x",
    "not a syslog line at all {i}",
]


def content(lines: int, *, non_ascii_every: int = 0) -> bytes:
    out = []
    for i in range(lines):
        line = AUTH[i % len(AUTH)].format(s=i % 60, i=i, n=i % 250, p=1024 + i)
        if non_ascii_every and i % non_ascii_every == 0:
            line += " người dùng"
        out.append(line)
        if i % 17 == 0:
            out.append("")  # empty lines emit nothing but move the position
        if i % 23 == 0:
            out[-1] += "\r"  # CRLF line ends
    return ("\n".join(out) + "\npartial line without newline").encode()


def run_source(tmp_path: Path, log: Path, block: bool, expected: int, **settings: Any) -> tuple[list[Event], Any]:
    state = tmp_path / ("block" if block else "lines")
    source = FileSource(
        "t",
        FileSourceSettings(paths=[str(log)], start_at="beginning", poll_interval=0.02, **settings),
        state_dir=state,
        host_id="h1",
    )
    assert source._block_split  # the settings here allow it
    source._block_split = block
    events: list[Event] = []
    lock = threading.Lock()

    def emit(batch: Sequence[Event]) -> None:
        with lock:
            events.extend(batch)

    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(emit, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if len(events) >= expected:
                break
        time.sleep(0.01)
    time.sleep(0.1)  # a last poll: nothing more may come
    stop.set()
    thread.join(timeout=5)
    saved = json.loads(source.registry.path.read_text())
    return events, saved


def _stable(events: list[Event]) -> list[Event]:
    """Events without ``@timestamp``: a line with no time of its own is stamped when it is read."""
    return [{k: v for k, v in event.items() if k != "@timestamp"} for event in events]


@pytest.mark.parametrize("non_ascii_every", [0, 500])
@pytest.mark.parametrize("batch_lines", [40, 1000])
def test_block_path_emits_what_the_line_path_emits(tmp_path: Path, non_ascii_every: int, batch_lines: int) -> None:
    log = tmp_path / "auth.log"
    lines = 1500
    log.write_bytes(content(lines, non_ascii_every=non_ascii_every))
    fast, fast_saved = run_source(tmp_path, log, True, lines, format="auto", batch_lines=batch_lines, tags=["t1"])
    slow, slow_saved = run_source(tmp_path, log, False, lines, format="auto", batch_lines=batch_lines, tags=["t1"])
    assert len(fast) == lines  # the partial last line is held back on both paths
    assert [e["event"]["id"] for e in fast] == [e["event"]["id"] for e in slow]
    assert _stable(fast) == _stable(slow)

    def auth(events: list[Event]) -> list[tuple[str, str]]:
        return [(e["@timestamp"], e["event"]["id"]) for e in events if e["event"]["dataset"] == "system.auth"]

    assert auth(fast) and auth(fast) == auth(slow)
    assert fast_saved == slow_saved
    assert [e["log"]["offset"] for e in fast] == sorted(e["log"]["offset"] for e in fast)


def test_block_path_is_off_for_multiline_and_non_ascii_encodings(tmp_path: Path) -> None:
    multi = FileSource("m", FileSourceSettings(paths=["x"], multiline=r"^\S"), state_dir=tmp_path, host_id="h")
    utf16 = FileSource("u", FileSourceSettings(paths=["x"], encoding="utf-16"), state_dir=tmp_path, host_id="h")
    latin = FileSource("l", FileSourceSettings(paths=["x"], encoding="latin-1"), state_dir=tmp_path, host_id="h")
    assert not multi._block_split
    assert not utf16._block_split
    assert latin._block_split

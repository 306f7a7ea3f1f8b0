"""JournaldSource against real journal files written by systemd-journal-remote and read by journalctl."""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.journald import JournaldSettings, JournaldSource, journal_record_to_event
from soc_common.ecs import Event

JOURNAL_REMOTE = shutil.which("systemd-journal-remote") or "/usr/lib/systemd/systemd-journal-remote"
HAVE_TOOLS = shutil.which("journalctl") is not None and Path(JOURNAL_REMOTE).exists()
needs_journal = pytest.mark.skipif(
    not HAVE_TOOLS, reason="needs journalctl and systemd-journal-remote (Debian: systemd-journal-remote)"
)
BOOT = "0123456789abcdef0123456789abcdef"


def _export_entry(fields: dict[str, str | bytes], ts_us: int) -> bytes:
    """One entry in the journal export format (binary-safe fields are length-prefixed)."""
    out = f"__REALTIME_TIMESTAMP={ts_us}\n__MONOTONIC_TIMESTAMP={ts_us % 10**9}\n_BOOT_ID={BOOT}\n".encode()
    for name, value in fields.items():
        if isinstance(value, bytes):
            out += name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
        else:
            out += f"{name}={value}\n".encode()
    return out + b"\n"


def _write_journal(path: Path, entries: list[dict[str, str | bytes]], start_us: int) -> None:
    data = b"".join(_export_entry(e, start_us + i * 1_000_000) for i, e in enumerate(entries))
    subprocess.run([JOURNAL_REMOTE, f"--output={path}", "-"], input=data, check=True, capture_output=True)


SSH_FAIL = {
    "_HOSTNAME": "web01",
    "SYSLOG_IDENTIFIER": "sshd",
    "_PID": "812",
    "_UID": "0",
    "PRIORITY": "6",
    "SYSLOG_FACILITY": "10",
    "_SYSTEMD_UNIT": "ssh.service",
    "_TRANSPORT": "syslog",
    "MESSAGE": "Failed password for invalid user oracle from 198.51.100.23 port 40122 ssh2",
}
APP = {"_HOSTNAME": "web01", "SYSLOG_IDENTIFIER": "myapp", "_UID": "1000", "PRIORITY": "3", "ORDER_ID": "42",
       "MESSAGE": "Không kết nối được cơ sở dữ liệu"}  # fmt: skip


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, batch: Sequence[Event]) -> None:
        self.events.extend(batch)

    def wait(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.events) >= n, f"got {len(self.events)} of {n}"


def _run(source: JournaldSource, sink: Collector) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(sink, stop), daemon=True)
    thread.start()
    return stop, thread


@needs_journal
def test_follow_map_and_resume_after_restart(tmp_path: Path) -> None:
    journal = tmp_path / "test.journal"
    _write_journal(journal, [SSH_FAIL, APP], 1_704_423_601_000_000)
    cfg = JournaldSettings(files=[str(journal)], start_at="beginning", flush_interval=0.05, batch_size=10)
    sink = Collector()
    source = JournaldSource("j", cfg, state_dir=tmp_path / "state", host_id="h1")
    stop, thread = _run(source, sink)
    sink.wait(2)
    ssh, app = sink.events[:2]
    assert ssh["@timestamp"] == "2024-01-05T03:00:01.000Z"
    assert ssh["event"]["dataset"] == "system.auth"
    assert ssh["event"]["action"] == "ssh_login" and ssh["event"]["outcome"] == "failure"
    assert ssh["user"]["name"] == "oracle" and ssh["source"]["ip"] == "198.51.100.23"
    assert ssh["process"] == {"name": "sshd", "pid": 812}
    assert ssh["journald"]["unit"] == "ssh.service"
    assert ssh["log"]["syslog"]["facility"]["name"] == "authpriv"
    assert app["event"]["dataset"] == "journald"
    assert app["message"] == "Không kết nối được cơ sở dữ liệu"
    assert app["log"]["level"] == "error" and app["user"]["id"] == "1000"
    assert app["journald"]["custom"] == {"order_id": "42"}
    # live: an entry appended while following arrives
    _write_journal(journal, [{**APP, "MESSAGE": "live one"}], 1_704_423_700_000_000)
    sink.wait(3)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    # restart: only what was written meanwhile, from the saved cursor
    _write_journal(journal, [{**APP, "MESSAGE": "while stopped"}], 1_704_423_800_000_000)
    again = JournaldSource("j", cfg, state_dir=tmp_path / "state", host_id="h1")
    stop, thread = _run(again, sink)
    sink.wait(4)
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    assert [e["message"] for e in sink.events][2:] == ["live one", "while stopped"]
    ids = [e["event"]["id"] for e in sink.events]
    assert len(set(ids)) == 4
    assert again.status()["cursor"] and again.errors == 0


@needs_journal
def test_binary_message_is_kept_and_tagged(tmp_path: Path) -> None:
    journal = tmp_path / "bin.journal"
    _write_journal(journal, [{"SYSLOG_IDENTIFIER": "x", "MESSAGE": b"bad \xff\xfe end"}], 1_704_423_601_000_000)
    out = subprocess.run(["journalctl", f"--file={journal}", "-o", "json", "--all", "--no-pager"],
                         check=True, capture_output=True).stdout  # fmt: skip
    import json

    record = json.loads(out.splitlines()[0])
    assert isinstance(record["MESSAGE"], list)  # journalctl prints binary values as byte arrays
    event = journal_record_to_event(record, "h1")
    assert event["message"] == "bad \ufffd\ufffd end"
    assert "_invalid_utf8" in event["tags"]


def test_missing_journalctl_is_an_error_not_a_crash(tmp_path: Path) -> None:
    cfg = JournaldSettings(journalctl=str(tmp_path / "no-such-journalctl"), restart_backoff=0.05)
    source = JournaldSource("j", cfg, state_dir=tmp_path, host_id="h1")
    sink = Collector()
    stop, thread = _run(source, sink)
    time.sleep(0.3)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert source.errors >= 1 and "journalctl" in (source.last_error or "")


def test_command_uses_cursor_filters_and_start(tmp_path: Path) -> None:
    cfg = JournaldSettings(units=["ssh.service"], identifiers=["sudo"], start_at="end")
    source = JournaldSource("j", cfg, state_dir=tmp_path, host_id="h1")
    cmd = source.command()
    assert "--unit=ssh.service" in cmd and "--identifier=sudo" in cmd and "--lines=0" in cmd
    source.cursor = "s=1;i=2"
    assert "--after-cursor=s=1;i=2" in source.command() and "--lines=0" not in source.command()


def test_odd_records_map_without_raising() -> None:
    event = journal_record_to_event(
        {"MESSAGE": ["first", "second"], "PRIORITY": "99", "_PID": "abc", "__REALTIME_TIMESTAMP": "x"}
    )
    assert event["message"] == "second"
    assert "pid" not in event.get("process", {})
    assert event["@timestamp"].endswith("Z")
    assert "id" not in event["event"]  # no cursor, no identity: the runtime must not get a fake one


_values: Any = st.recursive(
    st.none() | st.text() | st.integers() | st.lists(st.integers(0, 255)), lambda c: st.lists(c), max_leaves=5
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*SSH_FAIL, "__CURSOR", "__REALTIME_TIMESTAMP", "X_Y"]) | st.text(), _values))
def test_fuzzed_records_never_raise(record: dict[str, Any]) -> None:
    event = journal_record_to_event(record, "h")
    assert "original" in event["event"] and event["@timestamp"]

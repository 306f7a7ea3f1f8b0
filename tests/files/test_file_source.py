"""FileSource behaviour on real files: every line exactly once through rotation, restarts and bad bytes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.sources.files import FileSource, FileSourceSettings
from soc_common.ecs import Event
from tests.files.support import Harness


def _append(path: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    with open(path, "ab") as fh:
        fh.write(data)


def _lines(prefix: str, start: int, stop: int) -> str:
    return "".join(f"{prefix} line {i}\n" for i in range(start, stop))


def _assert_exactly_once(messages: list[str], expected: list[str]) -> None:
    counts = Counter(messages)
    dupes = {m: c for m, c in counts.items() if c > 1}
    assert not dupes, f"duplicated: {list(dupes)[:5]}"
    assert sorted(messages) == sorted(expected)


def test_reads_existing_and_appended_lines_with_offsets(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("alpha\nbeta\n")
    harness.start(paths=[str(log)])
    harness.wait_count(2)
    _append(log, "gamma\n")
    harness.wait_count(3)
    assert harness.messages() == ["alpha", "beta", "gamma"]
    offsets = [e["log"]["offset"] for e in harness.events]
    assert offsets == [0, 6, 11]
    assert {e["log"]["file"]["path"] for e in harness.events} == {str(log)}
    assert len({e["event"]["id"] for e in harness.events}) == 3


def test_glob_discovers_new_files_and_honours_exclude(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "logs" / "sub").mkdir(parents=True)
    (tmp_path / "logs" / "a.log").write_text("a1\n")
    harness.start(paths=[str(tmp_path / "logs" / "**" / "*.log")], exclude=["*skip*"])
    harness.wait_count(1)
    (tmp_path / "logs" / "sub" / "b.log").write_text("b1\nb2\n")
    (tmp_path / "logs" / "skip-me.log").write_text("never\n")
    (tmp_path / "logs" / "c.txt").write_text("not matched\n")
    harness.wait_count(3)
    _assert_exactly_once(harness.messages(), ["a1", "b1", "b2"])


def test_rename_and_create_rotation_loses_and_duplicates_nothing(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(_lines("gen0", 0, 50))
    harness.start(paths=[str(log)], batch_lines=7)
    harness.wait_count(50)  # the source has seen the first file before it is rotated
    expected = _lines("gen0", 0, 50)
    for gen in range(1, 4):
        _append(log, _lines(f"gen{gen - 1}", 50, 60))  # written just before rotation
        expected += _lines(f"gen{gen - 1}", 50, 60)
        os.rename(log, tmp_path / f"auth.log.{gen}")
        _append(tmp_path / f"auth.log.{gen}", _lines(f"late{gen}", 0, 3))  # writer not yet reopened
        expected += _lines(f"late{gen}", 0, 3)
        log.write_text(_lines(f"gen{gen}", 0, 50))
        expected += _lines(f"gen{gen}", 0, 50)
        # Real rotations are hours apart; a file created and renamed out of the watched
        # pattern within one poll interval is never seen by a polling tailer.
        harness.wait_for(lambda gen=gen: f"gen{gen} line 0" in harness.messages())
    want = expected.splitlines()
    harness.wait_count(len(want))
    _assert_exactly_once(harness.messages(), want)
    # the old file is finished before its successor is read
    msgs = harness.messages()
    assert msgs.index("late1 line 2") < msgs.index("gen1 line 0")


def test_copytruncate_restarts_at_zero(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(_lines("before", 0, 20))
    harness.start(paths=[str(log)])
    harness.wait_count(20)
    with open(log, "r+b") as fh:  # what logrotate copytruncate does after copying
        fh.truncate(0)
    _append(log, _lines("after", 0, 5))
    harness.wait_count(25)
    _assert_exactly_once(
        harness.messages(), [*_lines("before", 0, 20).splitlines(), *_lines("after", 0, 5).splitlines()]
    )
    ids = [e["event"]["id"] for e in harness.events]
    assert len(set(ids)) == 25


def test_truncate_and_refill_past_old_offset_is_noticed(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("first short line\n")
    harness.start(paths=[str(log)])
    harness.wait_count(1)
    # Replace the content in place with something longer before the next poll sees a shrink.
    with open(log, "r+b") as fh:
        fh.truncate(0)
        fh.write(_lines("refill", 0, 10).encode())
    harness.wait_count(11)
    _assert_exactly_once(harness.messages(), ["first short line", *_lines("refill", 0, 10).splitlines()])


def test_delete_and_recreate(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(_lines("old", 0, 10))
    harness.start(paths=[str(log)])
    harness.wait_count(10)
    _append(log, "old last\n")
    log.unlink()
    log.write_text(_lines("new", 0, 10))
    harness.wait_count(21)
    _assert_exactly_once(
        harness.messages(),
        [*_lines("old", 0, 10).splitlines(), "old last", *_lines("new", 0, 10).splitlines()],
    )


def test_restart_resumes_exactly(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(_lines("a", 0, 100))
    harness.start(paths=[str(log)], batch_lines=10)
    harness.wait_count(100)
    harness.stop()
    _append(log, _lines("a", 100, 150))
    source = harness.start(paths=[str(log)], batch_lines=10)
    harness.wait_count(150)
    _assert_exactly_once(harness.messages(), _lines("a", 0, 150).splitlines())
    status = source.status()
    assert status["files"][0]["offset"] == log.stat().st_size
    assert status["lag_bytes"] == 0


def test_rotation_while_stopped_finishes_the_renamed_file(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(_lines("a", 0, 10))
    harness.start(paths=[str(log)])
    harness.wait_count(10)
    harness.stop()
    _append(log, _lines("a", 10, 15))
    os.rename(log, tmp_path / "auth.log.1")
    log.write_text(_lines("b", 0, 5))
    harness.start(paths=[str(log)])
    harness.wait_count(20)
    _assert_exactly_once(harness.messages(), (_lines("a", 0, 15) + _lines("b", 0, 5)).splitlines())


def test_emit_failure_then_restart_redelivers_with_the_same_ids(tmp_path: Path) -> None:
    """A crash between spooling and committing: re-read events carry the ids already sent."""
    log = tmp_path / "app.log"
    log.write_text(_lines("x", 0, 30))
    settings = FileSourceSettings(paths=[str(log)], batch_lines=10, poll_interval=0.02, start_at="beginning")
    got: list[Event] = []
    calls = 0

    def failing_emit(batch: Sequence[Event]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            got.extend(batch)  # spooled, but the "agent crashes" before the position is saved
            raise RuntimeError("crash")
        got.extend(batch)

    source = FileSource("t", settings, state_dir=tmp_path / "state", host_id="h1")
    with pytest.raises(RuntimeError):
        source.run(failing_emit, threading.Event())
    assert len(got) == 20
    stop = threading.Event()
    again = FileSource("t", settings, state_dir=tmp_path / "state", host_id="h1")

    def emit_then_stop(batch: Sequence[Event]) -> None:
        got.extend(batch)
        if len(got) >= 40:
            stop.set()

    again.run(emit_then_stop, stop)
    ids = Counter(e["event"]["id"] for e in got)
    assert len(ids) == 30  # every line has one id, however often it was read
    assert sum(ids.values()) == 40  # the second batch was read twice, with identical ids
    assert {e["event"]["original"] for e in got} == set(_lines("x", 0, 30).splitlines())


def test_partial_line_is_held_until_completed(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("whole\npart")
    harness.start(paths=[str(log)])
    harness.wait_count(1)
    time.sleep(0.2)
    assert harness.messages() == ["whole"]
    _append(log, "ial\n")
    harness.wait_count(2)
    assert harness.messages() == ["whole", "partial"]


def test_partial_last_line_of_a_rotated_file_is_flushed(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("done\nno newline at end")
    harness.start(paths=[str(log)])
    harness.wait_count(1)
    os.rename(log, tmp_path / "app.log.1")
    harness.wait_count(2)
    assert harness.messages() == ["done", "no newline at end"]
    assert "_partial_line" in harness.events[1]["tags"]


def test_invalid_utf8_is_kept_and_tagged(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes("ok Đăng nhập\n".encode() + b"bad \xff\xfe bytes\n" + b"crlf line\r\n")
    source = harness.start(paths=[str(log)])
    harness.wait_count(3)
    assert harness.messages() == ["ok Đăng nhập", "bad \ufffd\ufffd bytes", "crlf line"]
    assert "_invalid_utf8" in harness.events[1]["tags"]
    assert "_invalid_utf8" not in harness.events[0].get("tags", [])
    assert source.status()["invalid_utf8"] == 1


def test_multiline_stack_traces(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    trace = (
        "2024-01-05 10:00:01 ERROR boom\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: bad\n"
        "2024-01-05 10:00:02 INFO next\n"
    )
    log.write_text(trace)
    harness.start(paths=[str(log)], multiline=r"^\d{4}-\d{2}-\d{2} ", multiline_timeout=0.2)
    harness.wait_count(2)
    msgs = harness.messages()
    assert msgs[0] == "\n".join(trace.splitlines()[:4])
    assert msgs[1] == "2024-01-05 10:00:02 INFO next"  # flushed by the timeout
    assert [e["log"]["offset"] for e in harness.events] == [0, trace.index("2024-01-05 10:00:02")]


def test_multiline_restart_rereads_the_unfinished_record(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("START a\n cont a\nSTART b\n cont b1\n")
    harness.start(paths=[str(log)], multiline="^START", multiline_timeout=30)
    harness.wait_count(1)
    harness.stop()
    _append(log, " cont b2\nSTART c\n")
    harness.start(paths=[str(log)], multiline="^START", multiline_timeout=30)
    harness.wait_count(2)
    assert harness.messages() == ["START a\n cont a", "START b\n cont b1\n cont b2"]


def test_endless_line_is_split_not_dropped(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("x" * 600 + "\nshort\n")
    harness.start(paths=[str(log)], max_line_bytes=256)
    harness.wait_count(4)
    msgs = harness.messages()
    assert "".join(msgs[:3]) == "x" * 600
    assert msgs[3] == "short"
    assert "_line_split" in harness.events[0]["tags"]


def test_start_at_end_only_for_files_present_at_first_run(harness: Harness, tmp_path: Path) -> None:
    old = tmp_path / "old.log"
    old.write_text("history 1\nhistory 2\n")
    harness.start(paths=[str(tmp_path / "*.log")], start_at="end")
    time.sleep(0.2)
    _append(old, "fresh\n")
    (tmp_path / "new.log").write_text("from the start\n")
    harness.wait_count(2)
    _assert_exactly_once(harness.messages(), ["fresh", "from the start"])


def test_parses_with_format_and_adds_tags_and_labels(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("Jan  5 10:00:01 web01 sshd[1]: Failed password for root from 203.0.113.9 port 2222 ssh2\n")
    harness.start(paths=[str(log)], format="authlog", tags=["linux"], fields={"team": "it"}, timezone="UTC")
    harness.wait_count(1)
    event = harness.events[0]
    assert event["event"]["dataset"] == "system.auth"
    assert event["source"]["ip"] == "203.0.113.9"
    assert event["tags"] == ["linux"]
    assert event["labels"] == {"team": "it"}
    assert event["@timestamp"].endswith("-01-05T10:00:01.000Z")


def test_event_ids_are_stable_across_a_fresh_re_read(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("same\nsame\n")
    runs = []
    for state in ("s1", "s2"):
        got: list[Event] = []
        stop = threading.Event()

        def emit(batch: Sequence[Event], got: list[Event] = got, stop: threading.Event = stop) -> None:
            got.extend(batch)
            stop.set()

        settings = FileSourceSettings(paths=[str(log)], format="raw", start_at="beginning")
        FileSource("t", settings, state_dir=tmp_path / state, host_id="h1").run(emit, stop)
        runs.append([e["event"]["id"] for e in got])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 2  # identical text at different offsets: different events


def test_offsets_registry_is_written_atomically_as_json(harness: Harness, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a\n")
    harness.start(paths=[str(log)])
    harness.wait_count(1)
    saved = json.loads((harness.state_dir / "files-test.json").read_text())
    (entry,) = saved["files"]
    assert entry["offset"] == 2 and entry["ino"] == log.stat().st_ino
    assert not [p for p in harness.state_dir.iterdir() if p.name.endswith(".tmp")]


def test_unreadable_file_is_counted_not_fatal(harness: Harness, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read a mode-000 file, so the permission error cannot be produced")
    locked = tmp_path / "locked.log"
    locked.write_text("secret\n")
    locked.chmod(0)
    (tmp_path / "open.log").write_text("visible\n")
    source = harness.start(paths=[str(tmp_path / "*.log")])
    harness.wait_count(1)
    assert harness.messages() == ["visible"]
    assert source.errors >= 1


def test_settings_validation() -> None:
    with pytest.raises(ValidationError):
        FileSourceSettings(paths=[])
    with pytest.raises(ValidationError):
        FileSourceSettings(paths=["x"], multiline="(")
    with pytest.raises(ValidationError):
        FileSourceSettings(paths=["x"], encoding="no-such-codec")
    with pytest.raises(ValidationError):
        FileSourceSettings(paths=["x"], timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        FileSourceSettings(paths=["x"], typo=1)

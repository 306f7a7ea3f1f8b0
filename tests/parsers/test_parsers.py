"""Known-answer tests for every log format, the shipped samples, and fuzzing (never raise, never drop)."""

# ruff: noqa: E501  (tables of real-looking log lines read best unwrapped)
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc_common.ecs import get
from soc_common.parsers import ParseOptions, formats, parse_line, parse_with_options, register_format
from soc_common.parsers.common import base_event
from soc_common.parsers.syslog import parse_syslog

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "logs"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = "Mar 12 13:14:02 srv-vp01"

AUTH_CASES: list[tuple[str, dict[str, Any]]] = [
    (f"{H} sshd[3001]: Failed password for root from 203.0.113.45 port 40000 ssh2",
     {"event.action": "ssh_login", "event.outcome": "failure", "user.name": "root", "source.ip": "203.0.113.45",
      "source.port": 40000, "system.auth.ssh.method": "password", "process.name": "sshd", "process.pid": 3001,
      "related.ip": ["203.0.113.45"], "related.user": ["root"], "event.category": ["authentication"]}),
    (f"{H} sshd[3001]: Failed password for invalid user admin from 2001:db8::7 port 4444 ssh2",
     {"event.outcome": "failure", "user.name": "admin", "source.ip": "2001:db8::7",
      "system.auth.ssh.invalid_user": True}),
    (f"{H} sshd[9]: Accepted publickey for alice from 10.0.0.5 port 5000 ssh2: ED25519 SHA256:abc",
     {"event.action": "ssh_login", "event.outcome": "success", "system.auth.ssh.method": "publickey",
      "system.auth.ssh.signature": "ED25519 SHA256:abc"}),
    (f"{H} sshd[9]: Accepted keyboard-interactive/pam for bob from 10.0.0.6 port 5001 ssh2",
     {"event.outcome": "success", "system.auth.ssh.method": "keyboard-interactive/pam", "user.name": "bob"}),
    (f"{H} sshd[9]: Invalid user test from 198.51.100.2 port 5555",
     {"event.action": "invalid_user", "event.outcome": "failure", "user.name": "test", "source.port": 5555}),
    (f"{H} sshd[9]: Connection closed by authenticating user root 198.51.100.2 port 5555 [preauth]",
     {"event.action": "ssh_disconnect", "user.name": "root", "system.auth.ssh.preauth": True}),
    (f"{H} sshd[9]: Disconnected from user tranthib 10.20.1.22 port 51544",
     {"event.action": "ssh_disconnect", "user.name": "tranthib", "source.ip": "10.20.1.22"}),
    (f"{H} sshd[9]: error: maximum authentication attempts exceeded for root from 203.0.113.45 port 1 ssh2 [preauth]",
     {"event.action": "ssh_max_auth_attempts", "event.outcome": "failure", "user.name": "root"}),
    (f"{H} sshd[9]: Disconnecting authenticating user root 203.0.113.45 port 2: Too many authentication failures",
     {"event.action": "ssh_max_auth_attempts", "source.port": 2}),
    (f"{H} sshd[9]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.45  user=root",
     {"event.action": "pam", "event.outcome": "failure", "user.name": "root", "source.ip": "203.0.113.45",
      "system.auth.pam.module": "pam_unix", "system.auth.pam.service": "sshd"}),
    (f"{H} sshd[9]: pam_unix(sshd:session): session opened for user alice(uid=1001) by (uid=0)",
     {"event.action": "pam", "event.category": ["session"], "event.type": ["start"], "user.name": "alice"}),
    (f"{H} sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
     {"event.action": "sudo", "event.outcome": "success", "user.name": "alice", "user.effective.name": "root",
      "process.command_line": "/usr/bin/id -u", "related.user": ["alice", "root"]}),
    (f"{H} sudo: bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
     {"event.action": "sudo", "event.outcome": "failure", "system.auth.sudo.error": "3 incorrect password attempts"}),
    (f"{H} sudo: eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
     {"event.outcome": "failure", "user.name": "eve"}),
    (f"{H} su[1]: (to root) alice on pts/0",
     {"event.action": "su", "event.outcome": "success", "user.name": "alice", "user.effective.name": "root"}),
    (f"{H} su[1]: FAILED SU (to root) alice on pts/0", {"event.action": "su", "event.outcome": "failure"}),
    (f"{H} su[1]: FAILED su for root by mallory", {"event.action": "su", "event.outcome": "failure",
                                                   "user.name": "mallory"}),
    (f"{H} useradd[5]: new user: name=backdoor, UID=1005, GID=1005, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/2",
     {"event.action": "user_created", "user.name": "backdoor", "user.id": "1005", "group.id": "1005",
      "system.auth.useradd.shell": "/bin/bash", "event.category": ["iam"]}),
    (f"{H} useradd[5]: new group: name=backdoor, GID=1005", {"event.action": "group_created",
                                                            "group.name": "backdoor"}),
    (f"{H} groupadd[5]: group added to /etc/group: name=devs, GID=1006", {"event.action": "group_created",
                                                                        "group.name": "devs"}),
    (f"{H} usermod[5]: add 'backdoor' to group 'sudo'", {"event.action": "user_modified",
                                                        "user.name": "backdoor", "group.name": "sudo"}),
    (f"{H} usermod[5]: change user 'bob' shell from '/bin/sh' to '/bin/bash'", {"event.action": "user_modified",
                                                                              "user.name": "bob"}),
    (f"{H} userdel[5]: delete user 'olduser'", {"event.action": "user_deleted", "user.name": "olduser"}),
    (f"{H} groupdel[5]: group 'devs' removed", {"event.action": "group_deleted", "group.name": "devs"}),
    (f"{H} passwd[5]: pam_unix(passwd:chauthtok): password changed for backdoor",
     {"event.action": "password_changed", "user.name": "backdoor"}),
    (f"{H} chage[5]: changed password expiry for bob", {"event.action": "user_modified", "user.name": "bob"}),
    (f"{H} systemd-logind[512]: New session 31 of user nguyenvana.",
     {"event.action": "new_session", "user.name": "nguyenvana", "system.auth.session.id": "31"}),
    (f"{H} systemd-logind[512]: Removed session 31.", {"event.action": "session_removed"}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), AUTH_CASES)
def test_authlog_known_answers(line: str, expected: dict[str, Any]) -> None:
    for fmt in ("authlog", "auto", "syslog"):
        event = parse_line(line, fmt, tz=VN, default_year=2024)
        assert event["event"]["dataset"] == "system.auth", fmt
        assert event["event"]["original"] == line
        assert event["@timestamp"] == "2024-03-12T06:14:02.000Z"
        assert "tags" not in event
        for path, value in expected.items():
            assert get(event, path) == value, (fmt, path, event)


def test_authlog_keeps_unknown_auth_lines_as_system_auth() -> None:
    event = parse_line(f"{H} sshd[1]: Server listening on 0.0.0.0 port 22.", "authlog", tz=UTC)
    assert event["event"]["dataset"] == "system.auth"
    assert "action" not in event["event"]
    assert event["message"] == "Server listening on 0.0.0.0 port 22."


SYSLOG_CASES: list[tuple[str, dict[str, Any]]] = [
    ("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
     {"log.syslog.priority": 34, "log.syslog.facility.name": "auth", "log.syslog.severity.name": "critical",
      "log.syslog.severity.code": 2, "host.hostname": "mymachine", "process.name": "su",
      "@timestamp": "2024-10-11T22:14:15.000Z"}),
    ("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
     '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] '
     "\ufeffAn application event log entry...",
     {"log.syslog.version": 1, "log.syslog.facility.name": "local4", "log.syslog.msgid": "ID47",
      "log.syslog.structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application",
                                                           "eventID": "1011"},
                                     "examplePriority@32473": {"class": "high"}},
      "message": "An application event log entry...", "@timestamp": "2003-10-11T22:14:15.003Z",
      "process.name": "evntslog"}),
    ('<13>1 2024-03-12T13:14:02.123456+07:00 pc-01 app 4321 - [a b="x\\"y\\]z\\\\w"] Mật khẩu sai',
     {"@timestamp": "2024-03-12T06:14:02.123Z", "process.pid": 4321, "log.syslog.procid": "4321",
      "log.syslog.structured_data": {"a": {"b": 'x"y]z\\w'}}, "message": "Mật khẩu sai"}),
    ("<14>1 - - - - - -", {"message": "", "log.syslog.severity.name": "informational"}),
    ("Mar 12 13:14:02 srv kernel: [ 1.2] usb 1-1: new device", {"process.name": "kernel",
                                                               "message": "[ 1.2] usb 1-1: new device"}),
    ("Mar  2 03:04:05 srv CRON[77]: (root) CMD (run-parts /etc/cron.hourly)",
     {"process.pid": 77, "@timestamp": "2024-03-02T03:04:05.000Z"}),
    ("Mar 12 13:14:02 srv just a message without tag", {"host.hostname": "srv",
                                                        "message": "just a message without tag"}),
    ("Mar 12 13:14:02 dhclient[9]: no hostname here", {"process.name": "dhclient", "message": "no hostname here"}),
    ("2024-03-12T13:14:02.5+07:00 srv app[1]: iso", {"@timestamp": "2024-03-12T06:14:02.500Z", "message": "iso"}),
    ("<13>no header at all", {"message": "no header at all", "log.syslog.priority": 13}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), SYSLOG_CASES)
def test_syslog_known_answers(line: str, expected: dict[str, Any]) -> None:
    event = parse_line(line, "syslog", tz=UTC, default_year=2024)
    assert "_syslogparsefailure" not in event.get("tags", []), event
    for path, value in expected.items():
        assert get(event, path) == value, (path, event)


@pytest.mark.parametrize(
    "line",
    ["<999>Mar 12 13:14:02 x y: z", "<ab>oops", "Mar 99 13:14:02 srv x: y", "Mar 12 1x:14:02 srv x: y",
     "<13>1 2024-13-45T00:00:00Z h a p m - x", '<13>1 2024-03-12T00:00:00Z h a p m [id k="unterminated',
     "plain words", ""],
)  # fmt: skip
def test_syslog_bad_lines_are_kept_and_tagged(line: str) -> None:
    event = parse_line(line, "syslog", tz=UTC)
    assert event["event"]["original"] == line
    assert "_syslogparsefailure" in event["tags"]
    assert event["soc"]["parse_error"]


def test_rfc3164_year_inference_around_now() -> None:
    def stamp(line: str, now: datetime) -> str:
        return str(parse_syslog(line, ParseOptions(tz=UTC, now=now))["@timestamp"])

    jan = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert stamp("Dec 31 23:59:00 h a: b", jan) == "2024-12-31T23:59:00.000Z"  # last year's log
    assert stamp("Jan  2 11:00:00 h a: b", jan) == "2025-01-02T11:00:00.000Z"
    new_year_eve = datetime(2024, 12, 31, 23, 59, 50, tzinfo=UTC)
    assert stamp("Jan  1 00:00:05 h a: b", new_year_eve) == "2025-01-01T00:00:05.000Z"  # clock ahead
    assert stamp("Feb 29 10:00:00 h a: b", datetime(2025, 3, 1, tzinfo=UTC)) == "2024-02-29T10:00:00.000Z"


def test_rfc3164_zone_is_applied() -> None:
    event = parse_line("Mar 12 13:14:02 h a: b", "syslog", tz=VN, default_year=2024)
    assert event["@timestamp"] == "2024-03-12T06:14:02.000Z"
    plus2 = timezone(timedelta(hours=2))
    assert parse_line("Mar 12 13:14:02 h a: b", tz=plus2, default_year=2024)["@timestamp"].startswith(
        "2024-03-12T11:14"
    )


ACCESS_CASES: list[tuple[str, dict[str, Any]]] = [
    ('203.0.113.9 - - [12/Mar/2024:10:21:00 +0700] "GET /.env?x=1 HTTP/1.1" 404 153 "-" "zgrab/0.x"',
     {"source.ip": "203.0.113.9", "http.request.method": "GET", "url.original": "/.env?x=1", "url.path": "/.env",
      "url.query": "x=1", "http.version": "1.1", "http.response.status_code": 404,
      "http.response.body.bytes": 153, "user_agent.original": "zgrab/0.x", "event.outcome": "failure",
      "@timestamp": "2024-03-12T03:21:00.000Z"}),
    ('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
     {"user.name": "frank", "http.response.status_code": 200, "@timestamp": "2000-10-10T20:55:36.000Z"}),
    ('2001:db8::1 - - [12/Mar/2024:10:22:00 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"',
     {"source.ip": "2001:db8::1", "url.original": "\\x16\\x03\\x01", "soc.invalid_request": True,
      "http.response.status_code": 400}),
    ('10.0.0.1 - - [12/Mar/2024:10:22:00 +0000] "POST /a HTTP/2.0" 201 - "https://x.vn/tìm" "UA \\"q\\"" 0.012',
     {"http.request.referrer": "https://x.vn/tìm", "user_agent.original": 'UA "q"', "http.version": "2.0"}),
    ('proxy.local - - [12/Mar/2024:10:22:00 +0000] "CONNECT http://evil.example:443/x HTTP/1.1" 405 0 "-" "-"',
     {"source.domain": "proxy.local", "url.domain": "evil.example:443", "url.path": "/x"}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), ACCESS_CASES)
def test_access_known_answers(line: str, expected: dict[str, Any]) -> None:
    for fmt in ("access", "auto", "nginx"):
        event = parse_line(line, fmt)
        assert event["event"]["dataset"] == "nginx.access"
        for path, value in expected.items():
            assert get(event, path) == value, (fmt, path, event)
    assert parse_line(line, "apache")["event"]["dataset"] == "apache.access"


def test_json_lines() -> None:
    ecs = parse_line('{"@timestamp":"2024-03-12T03:00:00Z","log.level":"warn","source":{"ip":"1.2.3.4"},'
                     '"event":{"dataset":"qlvb.app","action":"login"},"message":"Đăng nhập"}', "json")  # fmt: skip
    assert ecs["@timestamp"] == "2024-03-12T03:00:00.000Z"
    assert ecs["log"]["level"] == "warn" and ecs["source"]["ip"] == "1.2.3.4"
    assert ecs["event"]["dataset"] == "qlvb.app" and ecs["event"]["action"] == "login"
    assert ecs["message"] == "Đăng nhập"
    other = parse_line('{"time": 1710214300, "level": "error", "event": "db down", "a.b": 1, "a": {"c": 2}}')
    assert other["@timestamp"] == "2024-03-12T03:31:40.000Z"
    assert other["json"]["event"] == "db down"  # a scalar where ECS needs an object is moved, not lost
    assert other["a"] == {"b": 1, "c": 2} and other["event"]["dataset"] == "json"
    docker = parse_line('{"log":"hello\\n","stream":"stdout","time":"2024-03-12T03:00:00.5Z"}')
    assert docker["message"] == "hello\n" and docker["@timestamp"] == "2024-03-12T03:00:00.500Z"
    bad_time = parse_line('{"@timestamp": "yesterday", "m": 1}', "json")
    assert "_timestampparsefailure" in bad_time["tags"]
    for line in ("[1, 2]", "{not json", '"str"'):
        event = parse_line(line, "json")
        assert "_jsonparsefailure" in event["tags"] and event["event"]["original"] == line


def test_auto_falls_back_to_parsefailure_and_raw_keeps_lines() -> None:
    junk = parse_line("¯\\_(ツ)_/¯ random text")
    assert junk["event"]["dataset"] == "raw" and "_parsefailure" in junk["tags"]
    bad_json = parse_line("{broken")
    assert {"_parsefailure", "_jsonparsefailure"} <= set(bad_json["tags"])
    raw = parse_line("anything at all", "raw")
    assert raw["message"] == "anything at all" and "tags" not in raw


def test_bytes_with_invalid_utf8_are_kept_and_tagged() -> None:
    event = parse_line(b"Mar 12 13:14:02 h app[1]: bad \xff byte", tz=UTC)
    assert event["message"] == "bad \ufffd byte" and "_invalid_utf8" in event["tags"]
    assert event["process"]["name"] == "app"


def test_registry_plugs_in_a_new_format() -> None:
    def parse_kv(line: str, opts: ParseOptions) -> dict[str, Any]:
        event = base_event(line, "kv")
        event["kv"] = dict(p.split("=", 1) for p in line.split() if "=" in p)
        return event

    register_format("kv_test", parse_kv, lambda line: line.startswith("kv:"))
    try:
        assert "kv_test" in formats()
        assert parse_line("kv: a=1 b=2")["kv"] == {"a": "1", "b": "2"}
        assert parse_line("a=1", "kv_test")["event"]["dataset"] == "kv"
    finally:
        from soc_common.parsers import _FORMATS

        _FORMATS.pop("kv_test")
    with pytest.raises(ValueError, match="unknown log format"):
        parse_line("x", "nope")


def test_plugin_bug_does_not_lose_the_line() -> None:
    def broken(line: str, opts: ParseOptions) -> dict[str, Any]:
        raise KeyError("bug")

    register_format("broken_test", broken)
    try:
        event = parse_with_options("keep me", "broken_test", ParseOptions())
        assert event["event"]["original"] == "keep me" and "_parsefailure" in event["tags"]
    finally:
        from soc_common.parsers import _FORMATS

        _FORMATS.pop("broken_test")


# --- the shipped samples ------------------------------------------------------------------------


def test_sample_auth_log_parses_completely_and_holds_the_attack() -> None:
    lines = (SAMPLES / "auth.log").read_text(encoding="utf-8").splitlines()
    events = [parse_line(line, "authlog", tz=VN, default_year=2024) for line in lines]
    assert all("tags" not in e for e in events), [e["event"]["original"] for e in events if "tags" in e]
    assert all("action" in e["event"] for e in events), [e["message"] for e in events if "action" not in e["event"]]
    attacker = "203.0.113.45"
    failures = [e for e in events if get(e, "event.action") == "ssh_login" and get(e, "event.outcome") == "failure"
                and get(e, "source.ip") == attacker]  # fmt: skip
    assert len(failures) >= 20
    stamps = sorted(e["@timestamp"] for e in failures)
    first = datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))
    last = datetime.fromisoformat(stamps[-1].replace("Z", "+00:00"))
    assert last - first <= timedelta(minutes=1)
    success = [e for e in events if get(e, "event.action") == "ssh_login" and get(e, "event.outcome") == "success"
               and get(e, "source.ip") == attacker]  # fmt: skip
    assert [get(e, "user.name") for e in success] == ["root"]
    assert success[0]["@timestamp"] > stamps[-1]
    assert [get(e, "user.name") for e in events if get(e, "event.action") == "user_created"] == ["sysupdate"]
    sudo_root = [e for e in events if get(e, "event.action") == "sudo" and get(e, "user.effective.name") == "root"]
    assert len(sudo_root) >= 3


def test_sample_nginx_log_has_normal_traffic_and_a_scanner() -> None:
    lines = (SAMPLES / "nginx-access.log").read_text(encoding="utf-8").splitlines()
    events = [parse_line(line) for line in lines]
    assert all(e["event"]["dataset"] == "nginx.access" and "tags" not in e for e in events)
    scanner = [e for e in events if get(e, "source.ip") == "45.95.147.236"]
    assert len(scanner) >= 30
    assert sum(1 for e in scanner if get(e, "http.response.status_code") == 404) >= 20
    assert any(get(e, "url.path") == "/.env" for e in scanner)
    assert sum(1 for e in events if get(e, "http.response.status_code") == 200) >= 50


def test_sample_jsonl_parses() -> None:
    lines = (SAMPLES / "app.jsonl").read_text(encoding="utf-8").splitlines()
    events = [parse_line(line) for line in lines]
    assert all(e["event"]["dataset"] == "json" and "tags" not in e for e in events)
    assert any(get(e, "event.outcome") == "failure" and get(e, "source.ip") == "203.0.113.45" for e in events)
    assert all(e["@timestamp"].startswith("2024-03-12T") for e in events)
    for path in SAMPLES.iterdir():
        assert path.stat().st_size < 200_000


# --- fuzzing ------------------------------------------------------------------------------------

FORMAT_NAMES = ["auto", "syslog", "authlog", "access", "json", "raw", "nginx", "apache"]
_syslogish = st.builds(lambda pri, body: f"<{pri}>{body}", st.integers(-5, 300), st.text(max_size=80)) | st.builds(
    lambda body: f"Mar 12 13:14:02 h sshd[1]: {body}", st.text(max_size=120)
)


@settings(max_examples=300, deadline=None)
@given(line=st.text(max_size=300) | _syslogish, fmt=st.sampled_from(FORMAT_NAMES))
def test_fuzz_text_never_raises_and_keeps_the_line(line: str, fmt: str) -> None:
    event = parse_line(line, fmt, tz=UTC)
    assert event["event"]["original"] == line
    assert event["event"]["dataset"] and event["@timestamp"].endswith("Z")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), fmt=st.sampled_from(FORMAT_NAMES))
def test_fuzz_bytes_never_raise(data: bytes, fmt: str) -> None:
    event = parse_line(data, fmt)
    assert isinstance(event["event"]["original"], str)
    assert event["event"]["dataset"]


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                    max_leaves=12))  # fmt: skip
def test_fuzz_json_values_never_raise(value: Any) -> None:
    import json

    line = json.dumps(value)
    event = parse_line(line, "json")
    assert event["event"]["original"] == line and isinstance(event["event"], dict)

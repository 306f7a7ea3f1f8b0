"""The shipped rules in rules/ on realistic events (through the real parsers) and near-misses."""

from __future__ import annotations

from typing import Any

import pytest

from collector.detection.engine import DetectionEngine
from collector.detection.loader import load_engine
from detection.helpers import RULES

parsers = pytest.importorskip("soc_common.parsers", reason="auth-log parser (soc_common.parsers) not installed")
normalize = pytest.importorskip("agent.windows.normalize", reason="Windows normaliser not installed")

SSH_BRUTE = "44b3592b-8e3f-49d3-a520-01ea5a4f6797"
SSH_ROOT = "292fc56b-934d-4aec-bd95-435c769651d4"
USERADD = "2edb3f81-1df6-4dd7-a138-ff89097f3f5a"
PORT_SCAN = "fd07d58b-1b33-43b7-81ab-0edec15a5b01"
HOST_SWEEP = "a5bc77a0-5f05-4bc9-8c91-5f8547b03855"
WIN_BURST = "a1962403-e725-4e01-8e6b-676a80ec87c6"
LOG_CLEARED = "75d1100c-26ca-406d-9b95-ccd83a8f50bf"
SERVICE = "f559db5d-afef-4896-b3f7-7cfd13e6327d"
ENCODED_PS = "3a3db9a9-ff12-4346-b0a1-af6719175cc0"


@pytest.fixture(scope="module")
def engine_factory() -> Any:
    def make() -> DetectionEngine:
        engine = load_engine([RULES])
        assert engine.report is not None and not engine.report.skipped, engine.report.skipped
        return engine

    return make


def fired(engine: DetectionEngine, events: list[dict[str, Any]]) -> list[str]:
    return [a.rule_id for a in engine.process(events)]


def auth(line: str) -> dict[str, Any]:
    return parsers.parse_line(line, default_year=2025)  # type: ignore[no-any-return]


def windows(event_id: int, channel: str, provider: str, data: dict[str, str], second: int = 0) -> dict[str, Any]:
    record = {
        "Event": {
            "System": {
                "EventID": event_id,
                "Channel": channel,
                "Provider": {"#attributes": {"Name": provider}},
                "Computer": "PC-01.tinh.local",
                "EventRecordID": 1000 + second,
                "TimeCreated": {"#attributes": {"SystemTime": f"2025-01-10T08:00:{second:02d}.000Z"}},
            },
            "EventData": data,
        }
    }
    return normalize.normalize_event(record)  # type: ignore[no-any-return]


def flow(src: str, dst: str, port: int, second: int) -> dict[str, Any]:
    return {
        "@timestamp": f"2025-01-10T08:{second // 60:02d}:{second % 60:02d}.000Z",
        "event": {"dataset": "network_traffic.flow", "id": f"f-{src}-{dst}-{port}-{second}"},
        "source": {"ip": src, "port": 40000},
        "destination": {"ip": dst, "port": port},
        "network": {"transport": "tcp"},
    }


def test_ssh_brute_force(engine_factory: Any) -> None:
    lines = [
        # one account guessed ten times (ten different accounts would be password spraying, its own rule)
        f"Jan 10 12:00:{i:02d} web1 sshd[1{i}]: Failed password for invalid user oracle from 203.0.113.5 port 4{i} ssh2"
        for i in range(10)
    ]
    alerts = engine_factory().process([auth(x) for x in lines])
    assert [a.rule_id for a in alerts] == [SSH_BRUTE]
    alert = alerts[0]
    assert alert.source_ip == "203.0.113.5"
    assert alert.explanation["observed"] == 10
    assert alert.techniques == ["T1110.001"] and alert.tactics == ["credential-access"]
    assert len(alert.event_ids) == 10


def test_ssh_brute_force_near_miss_slow_or_spread(engine_factory: Any) -> None:
    slow = [
        f"Jan 10 12:{i:02d}:00 web1 sshd[1]: Failed password for bob from 203.0.113.5 port 4 ssh2"
        for i in range(0, 60, 6)
    ]
    spread = [
        f"Jan 10 13:00:{i:02d} web1 sshd[1]: Failed password for bob from 198.51.100.{i} port 4 ssh2" for i in range(10)
    ]
    assert fired(engine_factory(), [auth(x) for x in slow + spread]) == []


def test_ssh_root_login(engine_factory: Any) -> None:
    engine = engine_factory()
    ok = auth("Jan 10 12:00:01 web1 sshd[123]: Accepted publickey for root from 203.0.113.5 port 4242 ssh2")
    assert fired(engine, [ok]) == [SSH_ROOT]
    named = auth("Jan 10 12:00:01 web1 sshd[123]: Accepted publickey for admin from 203.0.113.5 port 4242 ssh2")
    failed = auth("Jan 10 12:00:02 web1 sshd[123]: Failed password for root from 203.0.113.5 port 4242 ssh2")
    assert fired(engine, [named, failed]) == []


def test_useradd(engine_factory: Any) -> None:
    engine = engine_factory()
    line = "Jan 10 12:00:01 web1 useradd[99]: new user: name=backdoor, UID=1001, GID=1001, home=/h, shell=/sh"
    alerts = engine.process([auth(line)])
    assert [a.rule_id for a in alerts] == [USERADD]
    assert alerts[0].user_name == "backdoor"
    group = "Jan 10 12:00:01 web1 groupadd[99]: new group: name=ops, GID=1002"
    assert USERADD not in fired(engine, [auth(group)])  # a new group is the group-created rule's business


def test_port_scan_and_near_miss(engine_factory: Any) -> None:
    scan = [flow("10.9.9.9", "10.0.0.1", port, port // 10) for port in range(1, 101)]
    assert fired(engine_factory(), scan) == [PORT_SCAN]
    few = [flow("10.9.9.9", "10.0.0.1", port, port // 10) for port in range(1, 100)]
    assert fired(engine_factory(), few) == []


def test_host_sweep_and_near_miss(engine_factory: Any) -> None:
    sweep = [flow("10.9.9.9", f"10.0.1.{i}", 445, i) for i in range(1, 51)]
    assert fired(engine_factory(), sweep) == [HOST_SWEEP]
    slow = [flow("10.9.9.9", f"10.0.1.{i}", 445, i * 10) for i in range(1, 51)]  # 500 s: never 50 in 5 min
    assert fired(engine_factory(), slow) == []


def _failed_logon(second: int, user: str = "administrator") -> dict[str, Any]:
    data = {"TargetUserName": user, "IpAddress": "10.1.1.1", "LogonType": "3", "Status": "0xc000006d"}
    return windows(4625, "Security", "Microsoft-Windows-Security-Auditing", data, second)


def test_windows_failed_logon_burst(engine_factory: Any) -> None:
    alerts = engine_factory().process([_failed_logon(i) for i in range(20)])
    assert [a.rule_id for a in alerts] == [WIN_BURST]
    assert alerts[0].explanation["group_by"]["winlog.event_data.TargetUserName"] == "administrator"
    spread = [_failed_logon(i, f"user{i % 2}") for i in range(20)]  # 10 per account
    assert fired(engine_factory(), spread) == []


def test_security_log_cleared(engine_factory: Any) -> None:
    engine = engine_factory()
    cleared = windows(1102, "Security", "Microsoft-Windows-Eventlog", {"SubjectUserName": "bob"})
    assert fired(engine, [cleared]) == [LOG_CLEARED]
    other = windows(1102, "Application", "SomeApp", {"x": "y"}, 1)
    assert fired(engine, [other]) == []


def test_service_installed(engine_factory: Any) -> None:
    engine = engine_factory()
    data = {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe", "StartType": "demand start"}
    alerts = engine.process([windows(7045, "System", "Service Control Manager", data)])
    assert [a.rule_id for a in alerts] == [SERVICE]
    assert alerts[0].events[0]["winlog.event_data.ServiceName"] == "PSEXESVC"
    assert fired(engine, [windows(7036, "System", "Service Control Manager", {"param1": "x"}, 1)]) == []


def test_encoded_powershell_on_sysmon_and_4688(engine_factory: Any) -> None:
    engine = engine_factory()
    cmd = "powershell.exe -NoP /enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBi"
    sysmon = windows(
        1,
        "Microsoft-Windows-Sysmon/Operational",
        "Microsoft-Windows-Sysmon",
        {"Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "CommandLine": cmd},
    )
    security = windows(
        4688,
        "Security",
        "Microsoft-Windows-Security-Auditing",
        {
            "NewProcessName": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "CommandLine": cmd,
        },
        1,
    )
    assert fired(engine, [sysmon]) == [ENCODED_PS]
    assert fired(engine, [security]) == [ENCODED_PS]
    benign = windows(
        1,
        "Microsoft-Windows-Sysmon/Operational",
        "Microsoft-Windows-Sysmon",
        {
            "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "CommandLine": "powershell -File x.ps1 -Encoding utf8",
        },
        2,
    )
    assert fired(engine, [benign]) == []


def test_alert_fields_and_dedup(engine_factory: Any) -> None:
    engine = engine_factory()
    cleared = windows(1102, "Security", "Microsoft-Windows-Eventlog", {"SubjectUserName": "bob"})
    first = engine.process([cleared])
    assert len(first) == 1
    alert = first[0]
    assert alert.host_name == "PC-01.tinh.local"
    assert alert.techniques == ["T1070.001"] and alert.tactics == ["defense-evasion"]
    assert alert.rule_level == "high" and alert.severity == "high"
    assert alert.id == type(alert).make_id(LOG_CLEARED, alert.group_key, alert.event_ids[0])
    assert engine.process([cleared]) == []  # the same event again: no second alert
    assert engine.stats.duplicates == 1

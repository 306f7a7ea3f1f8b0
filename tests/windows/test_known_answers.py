"""Concrete values from real sample files land in the right ECS fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.windows.evtx_file import read_evtx
from soc_common.ecs import Event, get


def first(path: Path, code: str) -> Event:
    for event in read_evtx(path):
        if event["event"]["code"] == code:
            return event
    raise AssertionError(f"no event {code} in {path.name}")


CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "AutomatedTestingTools/Malware/DE_timestomp_and_dll_sideloading_and_RunPersist.evtx",
        "1",
        {
            "@timestamp": "2019-04-27T15:57:53.368Z",
            "event.dataset": "windows.sysmon",
            "event.category": ["process"],
            "event.type": ["start"],
            "host.name": "IEWIN7",
            "winlog.record_id": 6577,
            "process.executable": "C:\\Users\\IEUser\\Downloads\\Flash_update.exe",
            "process.name": "Flash_update.exe",
            "process.pid": 2680,
            "process.entity_id": "365ABB72-7C01-5CC4-0000-00102B3E0C00",
            "process.command_line": '"C:\\Users\\IEUser\\Downloads\\Flash_update.exe" ',
            "process.hash.md5": "42893adbc36605ec79b5bd610759947e",
            "process.hash.sha256": "1a061c74619de6af8c02cba0fa00754bdd9e3515c0e08cad6350c7adfc8cdd5b",
            "process.pe.imphash": "40bec1a4a3bcb7d3089b5e1532386613",
            "process.parent.executable": "C:\\Windows\\explorer.exe",
            "process.parent.name": "explorer.exe",
            "process.parent.pid": 2772,
            "process.parent.command_line": "C:\\Windows\\Explorer.EXE",
            "user.name": "IEUser",
            "user.domain": "IEWIN7",
            # Sigma's field names read the raw values, verbatim and as text
            "winlog.event_data.ProcessId": "2680",
            "winlog.event_data.IntegrityLevel": "High",
            "winlog.event_data.Image": "C:\\Users\\IEUser\\Downloads\\Flash_update.exe",
        },
    ),
    (
        "AutomatedTestingTools/Malware/DE_timestomp_and_dll_sideloading_and_RunPersist.evtx",
        "11",
        {
            "file.path": "C:\\Users\\IEUser\\Downloads\\Flash_update.exe",
            "process.executable": "C:\\Windows\\Explorer.EXE",
            "event.category": ["file"],
        },
    ),
    (
        "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
        "3",
        {
            "source.ip": "10.0.2.15",
            "source.port": 49727,
            "destination.ip": "172.217.17.132",
            "destination.port": 80,
            "network.transport": "tcp",
            "related.ip": ["10.0.2.15", "172.217.17.132"],
        },
    ),
    ("Privilege Escalation/Sysmon_UACME_64.evtx", "22", {"dns.question.name": "wpad"}),
    (
        "Command and Control/DE_RDP_Tunnel_5156.evtx",
        "4624",
        {
            "@timestamp": "2019-02-13T18:02:04.426Z",
            "event.dataset": "windows.security",
            "event.category": ["authentication"],
            "event.action": "logged-in",
            "event.outcome": "success",
            "user.name": "user01",
            "user.domain": "EXAMPLE",
            "user.id": "S-1-5-21-1587066498-1489273250-1035260531-1106",
            "source.ip": "127.0.0.1",
            "winlog.logon.type": "CachedInteractive",
            "winlog.event_data.LogonType": "11",
            "winlog.channel": "Security",
            "winlog.computer_name": "PC01.example.corp",
            "winlog.record_id": 227701,
            "winlog.keywords": ["Audit Success"],
        },
    ),
    (
        "Credential Access/CA_4624_4625_LogonType2_LogonProc_chrome.evtx",
        "4625",
        {
            "event.action": "logon-failed",
            "event.outcome": "failure",
            "event.category": ["authentication"],
            "user.name": "IEUser",
            "user.domain": "MSEDGEWIN10",
            "winlog.logon.type": "Interactive",
            "winlog.logon.failure.status": "0xc000006d",
            "winlog.logon.failure.sub_status": "0xc000006a",
        },
    ),
    (
        "Command and Control/DE_RDP_Tunnel_5156.evtx",
        "4688",
        {
            "process.executable": "C:\\Windows\\System32\\TSTheme.exe",
            "process.name": "TSTheme.exe",
            "process.pid": 508,
            "process.parent.pid": 632,
            "user.name": "PC01$",
            "event.category": ["process"],
        },
    ),
    (
        "Defense Evasion/DE_Fake_ComputerAccount_4720.evtx",
        "4720",
        {
            "event.category": ["iam"],
            "event.action": "added-user-account",
            "user.target.name": "$",
            "user.target.id": "S-1-5-21-308926384-506822093-3341789130-107103",
            "user.name": "01566S-WIN16-IR$",
        },
    ),
    (
        "Persistence/Network_Service_Guest_added_to_admins_4732.evtx",
        "4732",
        {
            "event.action": "added-member-to-group",
            "group.name": "Administrators",
            "group.id": "S-1-5-32-544",
            "user.target.id": "S-1-5-21-3461203602-4096304019-2269080069-501",
        },
    ),
    (
        "Lateral Movement/LM_Remote_Service02_7045.evtx",
        "7045",
        {
            "event.dataset": "windows.system",
            "event.category": ["configuration"],
            "event.action": "service-installed",
            "service.name": "spoolfool",
            "service.type": "user mode service",
            "winlog.event_data.ImagePath": "cmd.exe",
            "winlog.event_data.AccountName": "LocalSystem",
            "winlog.provider_name": "Service Control Manager",
        },
    ),
    (
        "Command and Control/DE_RDP_Tunnel_5156.evtx",
        "1102",
        {
            "event.action": "audit-log-cleared",
            "event.provider": "Microsoft-Windows-Eventlog",
            "user.name": "admin01",
            "winlog.event_data.SubjectUserName": "admin01",
            "winlog.event_data.SubjectLogonId": "0xaf855",
        },
    ),
    (
        "AutomatedTestingTools/WinDefender_Events_1117_1116_AtomicRedTeam.evtx",
        "1116",
        {
            "event.kind": "alert",
            "event.dataset": "windows.defender",
            "event.action": "malware-detected",
            "rule.name": "Trojan:PowerShell/Powersploit.M",
            "threat.software.name": "Trojan:PowerShell/Powersploit.M",
            "winlog.event_data.Threat Name": "Trojan:PowerShell/Powersploit.M",
            "file.path": "C:\\AtomicRedTeam\\atomic-red-team-master\\atomics\\T1056\\Get-Keystrokes.ps1",
            "user.name": "IEUser",
        },
    ),
]


@pytest.mark.parametrize(("relative", "code", "expected"), CASES, ids=[f"{c[1]}" for c in CASES])
def test_known_answer(samples: Path, relative: str, code: str, expected: dict[str, Any]) -> None:
    event = first(samples / relative, code)
    assert event["event"]["code"] == code
    for field, value in expected.items():
        assert get(event, field) == value, field


def test_event_id_is_derived_from_the_record_identity(samples: Path) -> None:
    from soc_common.ecs import stable_event_id

    event = first(samples / "Command and Control/DE_RDP_Tunnel_5156.evtx", "4624")
    assert event["event"]["id"] == stable_event_id("PC01.example.corp", "Security", 227701, "2019-02-13T18:02:04.426Z")


def test_keyword_text_is_in_the_xml_original(samples: Path) -> None:
    """``event.original`` is XML, so a keyword with single backslashes (Sigma style) matches."""
    event = first(samples / "AutomatedTestingTools/Malware/DE_timestomp_and_dll_sideloading_and_RunPersist.evtx", "1")
    assert "\\Downloads\\Flash_update.exe" in event["event"]["original"]
    assert "<EventRecordID>6577</EventRecordID>" in event["event"]["original"]

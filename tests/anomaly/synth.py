"""Realistic synthetic events for detector tests: flows, DNS answers, Windows 4624 and Sysmon 1 through
the agent's Windows normaliser, sshd lines through the log parser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.windows.normalize import normalize_event
from soc_common.ecs import Event, iso, new_event, stable_event_id
from soc_common.parsers import parse_line

_record_ids = iter(range(1, 10**9))


def _windows_record(provider: str, channel: str, code: int, computer: str, at: datetime, data: dict[str, Any]) -> Event:
    record = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": provider}},
                "EventID": code,
                "Channel": channel,
                "Computer": computer,
                "EventRecordID": next(_record_ids),
                "TimeCreated": {"#attributes": {"SystemTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
            },
            "EventData": data,
        }
    }
    return normalize_event(record)


def windows_logon(at: datetime, user: str, source_ip: str, computer: str = "pc1.hn.local") -> Event:
    """Security 4624, network logon (type 3)."""
    data = {
        "TargetUserName": user,
        "TargetDomainName": "HN",
        "LogonType": 3,
        "IpAddress": source_ip,
        "WorkstationName": "PC",
    }
    return _windows_record("Microsoft-Windows-Security-Auditing", "Security", 4624, computer, at, data)


def sysmon_process(at: datetime, host: str, parent: str, image: str) -> Event:
    """Sysmon 1 (process creation) with full Windows paths, as the agent reads them."""
    data = {
        "Image": image,
        "ParentImage": parent,
        "CommandLine": image.rsplit("\\", 1)[-1],
        "User": "HN\\lan",
        "ProcessId": 4000,
        "ParentProcessId": 1000,
    }
    return _windows_record("Microsoft-Windows-Sysmon", "Microsoft-Windows-Sysmon/Operational", 1, host, at, data)


def ssh_login(at: datetime, user: str, source_ip: str, host: str = "srv1") -> Event:
    line = f"{iso(at)} {host} sshd[812]: Accepted publickey for {user} from {source_ip} port 50022 ssh2: RSA SHA256:x"
    event = parse_line(line, tz=UTC)
    event.setdefault("event", {})["id"] = stable_event_id("ssh", line)
    return event


def simple(at: datetime, dataset: str, host: str, n: int) -> Event:
    """A log line's worth of event from ``host`` (volume tests count these)."""
    ev = new_event(dataset=dataset, timestamp=at, event_id=stable_event_id("simple", dataset, host, at, n))
    ev["host"] = {"name": host}
    ev["message"] = f"line {n}"
    return ev


def dns_answer(at: datetime, client: str, name: str, rcode: str, n: int) -> Event:
    ev = new_event(dataset="network_traffic.dns", timestamp=at, event_id=stable_event_id("dns", client, name, at, n))
    ev["source"] = {"ip": client, "port": 40000 + n % 20000}
    ev["destination"] = {"ip": "10.0.0.53", "port": 53}
    ev["dns"] = {"type": "answer", "question": {"name": name, "type": "A"}, "response_code": rcode}
    return ev

"""Other record shapes (export JSON, separate attributes, UserData) and robustness against any input."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.windows.normalize import MAX_ORIGINAL_CHARS, normalize_event
from agent.windows.xml_record import xml_to_record

EXPORT_4624: dict[str, Any] = {
    "Event": {
        "@xmlns": "http://schemas.microsoft.com/win/2004/08/events/event",
        "System": {
            "Provider": {"@Name": "Microsoft-Windows-Security-Auditing", "@Guid": "{54849625-5478-4994}"},
            "EventID": "4624",
            "Level": "0",
            "Keywords": "0x8020000000000000",
            "TimeCreated": {"@SystemTime": "2024-03-01T02:03:04.1234567Z"},
            "EventRecordID": "991",
            "Execution": {"@ProcessID": "640", "@ThreadID": "700"},
            "Channel": "Security",
            "Computer": "pc-07.tinh.vn",
            "Security": None,
        },
        "EventData": {
            "Data": [
                {"@Name": "SubjectUserName", "#text": "PC-07$"},
                {"@Name": "TargetUserName", "#text": "nguyenvana"},
                {"@Name": "TargetDomainName", "#text": "TINH"},
                {"@Name": "TargetUserSid", "#text": "S-1-5-21-1-2-3-1104"},
                {"@Name": "LogonType", "#text": "10"},
                {"@Name": "IpAddress", "#text": "10.20.30.40"},
                {"@Name": "IpPort", "#text": "51234"},
                {"@Name": "WorkstationName", "#text": "ADMIN-PC"},
                {"@Name": "LmPackageName"},
            ]
        },
    }
}


def test_export_shape_maps_like_the_evtx_shape() -> None:
    event = normalize_event(EXPORT_4624)
    assert event["@timestamp"] == "2024-03-01T02:03:04.123Z"
    assert event["event"]["code"] == "4624"
    assert event["event"]["outcome"] == "success"
    assert event["winlog"]["record_id"] == 991
    assert event["winlog"]["process"] == {"pid": 640, "thread": {"id": 700}}
    assert event["winlog"]["provider_guid"] == "{54849625-5478-4994}"
    assert event["winlog"]["event_data"]["LogonType"] == "10"
    assert event["winlog"]["event_data"]["LmPackageName"] == ""
    assert event["user"] == {"name": "nguyenvana", "domain": "TINH", "id": "S-1-5-21-1-2-3-1104"}
    assert event["source"] == {"ip": "10.20.30.40", "port": 51234, "domain": "ADMIN-PC"}
    assert event["winlog"]["logon"]["type"] == "RemoteInteractive"
    assert event["related"] == {"user": ["nguyenvana", "PC-07$"], "ip": ["10.20.30.40"]}
    assert '<Data Name="TargetUserName">nguyenvana</Data>' in event["event"]["original"]
    assert "soc" not in event


def test_separate_attributes_shape_and_unnamed_data() -> None:
    record = {
        "Event": {
            "System": {
                "Provider_attributes": {"Name": "MSSQLSERVER"},
                "EventID": 18456,
                "TimeCreated_attributes": {"SystemTime": "2020-01-01T00:00:00Z"},
                "EventRecordID": 5,
                "Channel": "Application",
                "Computer": "db01",
            },
            "EventData": {"Data": {"#text": ["sa", " Reason: bad password", " [CLIENT: 10.0.2.17]"]}},
        }
    }
    event = normalize_event(record)
    assert event["event"]["dataset"] == "windows.application"
    assert event["event"]["provider"] == "MSSQLSERVER"
    assert event["winlog"]["event_data"] == {
        "param1": "sa",
        "param2": " Reason: bad password",
        "param3": " [CLIENT: 10.0.2.17]",
    }


def test_userdata_fields_go_to_event_data() -> None:
    xml = (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<Provider Name='Microsoft-Windows-Eventlog' Guid='{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}'/>"
        "<EventID>1102</EventID><TimeCreated SystemTime='2024-05-05T05:05:05.5555555Z'/>"
        "<EventRecordID>77</EventRecordID><Channel>Security</Channel><Computer>dc1</Computer></System>"
        "<UserData><LogFileCleared xmlns='http://manifests.microsoft.com/win/2004/08/windows/eventlog'>"
        "<SubjectUserSid>S-1-5-21-9</SubjectUserSid><SubjectUserName>attacker</SubjectUserName>"
        "<SubjectDomainName>TINH</SubjectDomainName><SubjectLogonId>0x1</SubjectLogonId>"
        "</LogFileCleared></UserData></Event>"
    )
    event = normalize_event(xml_to_record(xml), original=xml)
    assert event["event"]["action"] == "audit-log-cleared"
    assert event["winlog"]["event_data"]["SubjectUserName"] == "attacker"
    assert event["user"]["name"] == "attacker"
    assert event["event"]["original"] == xml


def test_event_1102_from_another_provider_is_not_a_log_clear() -> None:
    record = json.loads(json.dumps(EXPORT_4624))
    system = record["Event"]["System"]
    system["EventID"] = "1102"
    system["Provider"] = {"@Name": "SomeVendor"}
    assert "action" not in normalize_event(record)["event"]


def test_missing_parts_still_yield_an_event_with_the_reason() -> None:
    event = normalize_event({"Event": {"EventData": {"Data": [{"@Name": "x", "#text": "y"}]}}})
    assert "no System element" in event["soc"]["parse_error"]
    assert event["winlog"]["event_data"] == {"x": "y"}
    assert event["event"]["id"] and event["@timestamp"].endswith("Z")
    broken = normalize_event({"Event": "nonsense"})
    assert broken["soc"]["parse_error"].startswith("unreadable Windows event record")
    assert broken["event"]["original"] == '{"Event": "nonsense"}'
    not_a_dict = normalize_event(["a", 1])  # type: ignore[arg-type]
    assert "soc" in not_a_dict


def test_original_is_bounded() -> None:
    record = json.loads(json.dumps(EXPORT_4624))
    record["Event"]["EventData"]["Data"].append({"@Name": "ScriptBlockText", "#text": "A" * 100_000})
    event = normalize_event(record)
    assert len(event["event"]["original"]) == MAX_ORIGINAL_CHARS
    assert "original_truncated" in event["tags"]
    assert len(event["winlog"]["event_data"]["ScriptBlockText"]) == 100_000  # the field itself is whole


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
_keys = st.sampled_from(
    [
        "Event",
        "System",
        "EventData",
        "UserData",
        "Data",
        "#text",
        "#attributes",
        "@Name",
        "Name",
        "Provider",
        "EventID",
        "TimeCreated",
        "SystemTime",
        "Channel",
        "Computer",
        "EventRecordID",
        "Execution",
        "ProcessID",
        "Security",
        "UserID",
        "Keywords",
        "Level",
        "Correlation",
        "Image",
        "ProcessId",
        "TargetUserName",
        "IpAddress",
        "IpPort",
        "Hashes",
        "MemberName",
    ]
) | st.text(max_size=8)
_trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _trees, max_size=5))
def test_fuzzed_records_never_raise(record: dict[str, Any]) -> None:
    event = normalize_event(record)
    assert event["event"]["id"]
    assert event["@timestamp"].endswith("Z")
    json.dumps(event)


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(["1", "3", "11", "22", "4624", "4625", "4688", "4720", "4732", "7045", "1116"]),
    channel=st.sampled_from(
        [
            "Security",
            "System",
            "Microsoft-Windows-Sysmon/Operational",
            "Microsoft-Windows-Windows Defender/Operational",
        ]
    ),
    data=st.dictionaries(
        st.sampled_from(
            [
                "Image",
                "ProcessId",
                "ParentProcessId",
                "Hashes",
                "User",
                "IpAddress",
                "IpPort",
                "SourceIp",
                "DestinationPort",
                "NewProcessId",
                "TargetUserName",
                "MemberName",
                "Path",
                "Threat Name",
                "LogonType",
                "Status",
            ]
        ),
        _scalars | st.lists(st.text(max_size=5), max_size=3),
        max_size=8,
    ),
)
def test_fuzzed_event_data_never_breaks_the_mappers(code: str, channel: str, data: dict[str, Any]) -> None:
    record = {
        "Event": {
            "System": {
                "EventID": code,
                "Channel": channel,
                "Provider": {"@Name": "x"},
                "TimeCreated": {"@SystemTime": "2024-01-01T00:00:00Z"},
            },
            "EventData": data,
        }
    }
    event = normalize_event(record)
    assert "parse_error" not in event.get("soc", {}), event.get("soc")
    assert event["event"]["code"] == code

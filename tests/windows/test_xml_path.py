"""The live path (rendered XML -> xml_to_record -> normaliser) equals the .evtx JSON path on real records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from evtx import PyEvtxParser

from agent.windows.normalize import normalize_event
from agent.windows.xml_record import XmlRecordError, xml_to_record
from soc_common.ecs import Event

# the illegal-control-character file and the CR LF / unnamed-data files are always in the sample
ALWAYS = (
    "dicovery_4661_net_group_domain_admins_target.evtx",
    "ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx",
    "dc_applog_ntdsutil_dfir_325_326_327.evtx",
    "MSSQL_multiple_failed_logon_EventID_18456.evtx",
    "DE_RDP_Tunnel_5156.evtx",
)


def _without_original(event: Event) -> Event:
    copy: Event = json.loads(json.dumps(event))
    copy["event"].pop("original")
    return copy


def test_xml_path_equals_json_path(evtx_files: list[Path]) -> None:
    chosen = [p for i, p in enumerate(evtx_files) if i % 6 == 0 or p.name in ALWAYS]
    compared = 0
    for path in chosen:
        as_json: list[Any] = list(PyEvtxParser(str(path)).records_json())
        as_xml: list[Any] = list(PyEvtxParser(str(path)).records())
        assert len(as_json) == len(as_xml)
        for j, x in zip(as_json, as_xml, strict=True):
            from_json = normalize_event(json.loads(j["data"]))
            from_xml = normalize_event(xml_to_record(x["data"]), original=x["data"])
            assert _without_original(from_json) == _without_original(from_xml), (
                path.name,
                j["event_record_id"],
            )
            assert from_xml["event"]["original"] == x["data"]
            compared += 1
    assert compared > 1000


def test_control_characters_survive_the_xml_path(samples: Path) -> None:
    path = samples / "Discovery" / "dicovery_4661_net_group_domain_admins_target.evtx"
    records: list[Any] = list(PyEvtxParser(str(path)).records())
    values = [normalize_event(xml_to_record(r["data"]))["winlog"]["event_data"].get("PrivilegeList") for r in records]
    assert any(v and "\x02" in v for v in values)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not xml",
        "<Event><System>",
        "<NotEvent/>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Event>&a;</Event>',
    ],
)
def test_bad_xml_is_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(XmlRecordError):
        xml_to_record(text)


def test_character_references_to_control_characters() -> None:
    xml = (
        "<Event><System><EventID>1</EventID><Channel>Application</Channel></System>"
        "<EventData><Data Name='x'>a&#x1;b&#13;&#10;c</Data></EventData></Event>"
    )
    assert xml_to_record(xml)["Event"]["EventData"]["x"] == "a\x01b\r\nc"

"""The committed scenario captures match their expected answers; the real captures meter sanely."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from agent.flows import FlowMeter, events_from_pcap, meter_pcap
from flows.craft import SCENARIO_PCAPS, SHARED_PCAPS, count_packets, flows, of

EXPECTED = sorted(SCENARIO_PCAPS.glob("*.expected.json"))
REAL = sorted(SHARED_PCAPS.glob("*.pcap")) if SHARED_PCAPS.is_dir() else []
TSHARK = shutil.which("tshark")


def test_scenarios_present_and_small() -> None:
    names = {p.name.removesuffix(".expected.json") for p in EXPECTED}
    assert names >= {
        "port-scan",
        "host-sweep",
        "beaconing",
        "dns-tunnel",
        "bulk-upload",
        "wan-to-internet",
        "office-day",
    }
    assert sum(p.stat().st_size for p in SCENARIO_PCAPS.iterdir()) < 5_000_000


@pytest.mark.parametrize("expected_path", EXPECTED, ids=lambda p: p.name.split(".")[0])
def test_scenario_matches_expected(expected_path: Path) -> None:
    expected = json.loads(expected_path.read_text())
    meter = FlowMeter()
    events = [*meter_pcap(SCENARIO_PCAPS / expected["file"], meter), *meter.flush()]
    dns = of(events, "network_traffic.dns")
    tls = of(events, "network_traffic.tls")
    http = of(events, "network_traffic.http")
    answers = [e for e in dns if e["dns"]["type"] == "answer"]
    got = {
        "packets": meter.packets,
        "ip_bytes": meter.bytes,
        "flows": len(flows(events)),
        "dns_queries": sum(e["dns"]["type"] == "query" for e in dns),
        "dns_answers": len(answers),
        "dns_names": len({e["dns"]["question"]["name"] for e in dns}),
        "dns_response_codes": dict(sorted(Counter(e["dns"]["response_code"] for e in answers).items())),
        "tls_client_hellos": len(tls),
        "tls_server_names": sorted({e["tls"]["client"]["server_name"] for e in tls}),
        "http_requests": len(http),
        "http_hosts": sorted({e["url"]["domain"] for e in http}),
    }
    assert got == {key: expected[key] for key in got}
    assert meter.malformed == 0
    assert sum(f["network"]["packets"] for f in flows(events)) == expected["packets"]


def test_port_scan_shape() -> None:
    events = flows(events_from_pcap(SCENARIO_PCAPS / "port-scan.pcap"))
    assert {(e["source"]["ip"], e["destination"]["ip"]) for e in events} == {("10.10.5.23", "10.0.0.10")}
    assert len({e["destination"]["port"] for e in events}) == 1024


def test_beaconing_interval() -> None:
    events = flows(events_from_pcap(SCENARIO_PCAPS / "beaconing.pcap"))
    starts = sorted(e["event"]["start"] for e in events)
    assert len(starts) == 72 and all(e["destination"]["ip"] == "203.0.113.66" for e in events)


@pytest.mark.skipif(not REAL, reason="the shared reference captures (../shared/data/pcaps) are not present")
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_capture_meters_without_crashing(path: Path) -> None:
    meter = FlowMeter()
    events = [*meter_pcap(path, meter), *meter.flush()]
    assert meter.packets == count_packets(path) > 0
    flow_events = flows(events)
    assert sum(f["network"]["packets"] for f in flow_events) == meter.packets - meter.non_ip - meter.malformed
    assert sum(f["network"]["bytes"] for f in flow_events) == meter.bytes
    assert meter.malformed == 0
    assert len({e["event"]["id"] for e in events}) == len(events)
    for flow in flow_events:
        assert flow["event"]["start"] <= flow["event"]["end"]
        assert flow["network"]["community_id"].startswith("1:")


@pytest.mark.skipif(not REAL, reason="the shared reference captures (../shared/data/pcaps) are not present")
@pytest.mark.skipif(TSHARK is None, reason="tshark (Debian package tshark) is not installed")
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_packet_count_and_community_ids_agree_with_tshark(path: Path) -> None:
    assert TSHARK is not None
    out = subprocess.run(
        [
            TSHARK,
            "--enable-protocol",
            "communityid",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "communityid",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    assert count_packets(path) == len(out)
    theirs = {line.split("\t")[1] for line in out if "\t" in line and line.split("\t")[1]}
    # Wireshark hashes the innermost IP header of a tunnel; we meter the tunnel itself (as softflowd)
    ours = {e["network"]["community_id"] for e in flows(events_from_pcap(path)) if e["network"]["transport"] != "gre"}
    # every flow we report is one Wireshark also hashed, to the same id
    assert ours <= theirs, sorted(ours - theirs)[:5]


def test_scenario_generation_is_reproducible(tmp_path: Path) -> None:
    """Re-crafting a capture gives the committed bytes (fixed seed and timestamps)."""
    import sys

    sys.path.insert(0, str(SCENARIO_PCAPS.parent / "scripts"))
    import make_pcaps

    for make in (make_pcaps.wan_to_internet, make_pcaps.host_sweep):
        scenario = make()
        make_pcaps.write(scenario, tmp_path)
        for suffix in (".pcap", ".expected.json"):
            name = scenario.name + suffix
            assert (tmp_path / name).read_bytes() == (SCENARIO_PCAPS / name).read_bytes(), name

"""Processors of the collector pipeline: normalisation and enrichment, on real configuration objects."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import CollectorConfig, EnrichSettings
from collector.pipeline.cidr import CidrMap
from collector.pipeline.enrich import EnrichSite, EnrichZone
from collector.pipeline.intel import ThreatIntel, load_indicators
from collector.pipeline.normalize import Normalize
from collector.pipeline.related import Related
from collector.pipeline.runner import build_processors
from collector.pipeline.systems import EnrichSystem, StaticSystemResolver
from soc_common.ecs import Event, get, new_event


def enrich_settings(**extra: object) -> EnrichSettings:
    return EnrichSettings.model_validate(
        {
            "default_site": "unknown",
            "zones": [
                {"name": "internet", "cidrs": ["0.0.0.0/0", "::/0"]},
                {"name": "party-wan", "cidrs": ["10.0.0.0/8"]},
                {"name": "datacenter", "cidrs": ["10.10.0.0/16", "2001:db8:10::/48"]},
            ],
            "sites": [
                {"code": "hn", "cidrs": ["10.1.0.0/16"], "hosts": ["hn-*"]},
                {"code": "dn", "cidrs": ["10.2.0.0/16"], "hosts": ["dn-*", "DANANG??"]},
            ],
            **extra,
        }
    )


def test_cidr_longest_prefix_wins_and_handles_junk() -> None:
    m = CidrMap([("10.0.0.0/8", "wan"), ("10.10.0.0/16", "dc"), ("10.10.5.0/24", "dc-mgmt"), ("::/0", "v6")])
    assert m.lookup("10.10.5.9") == "dc-mgmt"
    assert m.lookup("10.10.6.9") == "dc"
    assert m.lookup("10.200.0.1") == "wan"
    assert m.lookup("192.168.1.1") is None
    assert m.lookup("::ffff:10.10.5.1") == "dc-mgmt"  # IPv4-mapped IPv6
    assert m.lookup("2001:db8::1") == "v6"
    assert m.lookup("not an ip") is None and m.lookup("") is None


def test_zones_for_host_source_and_destination() -> None:
    ev = new_event(dataset="network_traffic.flow")
    ev.update({"host": {"ip": ["10.10.0.5"]}, "source": {"ip": "10.1.2.3"}, "destination": {"ip": "8.8.8.8"}})
    [out] = EnrichZone(enrich_settings()).process([ev])
    assert get(out, "soc.zone") == "datacenter"
    assert get(out, "soc.source_zone") == "party-wan"
    assert get(out, "soc.destination_zone") == "internet"


def test_sites_by_cidr_by_name_pattern_default_and_kept_when_set() -> None:
    proc = EnrichSite(enrich_settings())
    by_ip = {"host": {"ip": "10.2.9.9", "name": "whatever"}}
    by_name = {"host": {"name": "HN-PC-07"}}
    by_winlog = {"winlog": {"computer_name": "danang01"}}
    nothing = {"host": {"name": "x"}}
    preset = {"host": {"ip": "10.2.9.9"}, "soc": {"site": "enrolled-site"}}
    out = proc.process([by_ip, by_name, by_winlog, nothing, preset])
    assert [get(e, "soc.site") for e in out] == ["dn", "hn", "dn", "unknown", "enrolled-site"]


def test_system_from_config_and_csv(tmp_path: Path) -> None:
    csv_file = tmp_path / "systems.csv"
    csv_file.write_text("system_id,asset\nsys-mail,mail01\nsys-web,10.10.8.0/24\n# comment,x\nsys-dc,dc-*\n")
    settings = enrich_settings(systems=[{"id": "sys-hr", "hosts": ["hr-app"]}], systems_file=str(csv_file))
    proc = EnrichSystem(StaticSystemResolver(settings))
    events: list[Event] = [
        {"host": {"name": "MAIL01"}},
        {"host": {"name": "web9", "ip": ["10.10.8.20"]}},
        {"host": {"hostname": "hr-app"}},
        {"host": {"name": "dc-02"}},
        {"host": {"name": "other"}},
    ]
    assert [get(e, "soc.system_id") for e in proc.process(events)] == [
        "sys-mail", "sys-web", "sys-hr", "sys-dc", None,
    ]  # fmt: skip


def test_related_collects_ips_users_hosts_and_hashes() -> None:
    ev: Event = {
        "source": {"ip": "1.2.3.4"},
        "destination": {"ip": "5.6.7.8"},
        "host": {"ip": ["10.0.0.1", "1.2.3.4"], "name": "PC-01"},
        "user": {"name": "alice", "target": {"name": "bob"}},
        "dns": {"question": {"name": "Example.COM."}},
        "process": {"hash": {"sha256": "AB" * 32}},
        "winlog": {"event_data": {"Hashes": "SHA1=" + "c" * 40 + ",MD5=" + "d" * 32}},
    }
    [out] = Related().process([ev])
    assert out["related"]["ip"] == ["1.2.3.4", "5.6.7.8", "10.0.0.1"]
    assert out["related"]["user"] == ["alice", "bob"]
    assert out["related"]["hosts"] == ["pc-01", "example.com"]
    assert out["related"]["hash"] == ["ab" * 32, "c" * 40, "d" * 32]


def _intel(tmp_path: Path) -> ThreatIntel:
    plain = tmp_path / "bad.txt"
    plain.write_text("# feed\n203.0.113.0/24\nevil.example\n" + "e" * 64 + "\n!!!not-an-indicator!!!\n")
    csv_file = tmp_path / "feed.csv"
    csv_file.write_text("type,value,description\ndomain,c2.test,APT C2\nip,198.51.100.9,scanner\n")
    return ThreatIntel([plain, csv_file, tmp_path / "missing.txt"])


def test_intel_ip_cidr_domain_parent_and_hash(tmp_path: Path) -> None:
    intel = _intel(tmp_path)
    assert intel.indicators.skipped == 1
    events: list[Event] = [
        {"destination": {"ip": "203.0.113.77"}},
        {"dns": {"question": {"name": "cdn.a.EVIL.example."}}},  # parent-domain match
        {"tls": {"client": {"server_name": "c2.test"}}},
        {"related": {"hash": ["e" * 64]}},
        {"url": {"domain": "notevil.example"}},  # a different registered name: no match
        {"source": {"ip": "198.51.100.10"}},
    ]
    out = intel.process(events)
    assert [("intel_match" in e.get("tags", [])) for e in out] == [True, True, True, True, False, False]
    assert get(out[1], "threat.indicator.name") == "evil.example"
    assert get(out[1], "threat.enrichments")[0]["matched"] == {
        "field": "dns.question.name",
        "atomic": "cdn.a.EVIL.example.",
    }
    assert get(out[2], "threat.indicator.description") == "APT C2"
    assert get(out[3], "threat.indicator.type") == "file"


def test_intel_reloads_changed_file(tmp_path: Path) -> None:
    feed = tmp_path / "feed.txt"
    feed.write_text("1.1.1.1\n")
    intel = ThreatIntel([feed], reload_seconds=0)
    assert not intel.process([{"source": {"ip": "9.9.9.9"}}])[0].get("tags")
    feed.write_text("9.9.9.9\n")
    import os

    os.utime(feed, (1, 1))  # a different mtime, whatever the clock resolution
    assert "intel_match" in intel.process([{"source": {"ip": "9.9.9.9"}}])[0]["tags"]


def test_load_indicators_tolerates_garbage(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes(b'\xff\xfe,,,\n"unterminated,1.2.3.4\nhash,zzzz\n1.2.3.4\n')
    ind = load_indicators([f])
    assert ind.ip_map.lookup("1.2.3.4") is not None


def test_normalize_fixes_invariants_and_tags_problems() -> None:
    long = "x" * 50
    events: list[Event] = [
        {"event.id": "flat-1", "@timestamp": "2024-03-01T10:00:00+07:00", "message": long},
        {"event": {"id": 7, "kind": "bogus"}, "@timestamp": "yesterday-ish"},
        {"message": "no id, no time"},
        {"event": "a string", "@timestamp": 1700000000},
    ]
    out = Normalize(max_field_chars=30).process(events)
    a, b, c, d = out
    assert a["event"]["id"] == "flat-1" and "event.id" not in a
    assert a["@timestamp"] == "2024-03-01T03:00:00.000Z"
    assert a["message"] == "x" * 30 and "truncated" in a["tags"]
    assert b["event"]["id"] == "7" and "event_kind_invalid" in b["tags"] and "timestamp_invalid" in b["tags"]
    assert get(b, "soc.original_timestamp") == "yesterday-ish"
    assert c["event"]["id"] and "event_id_assigned" in c["tags"] and c["event"]["kind"] == "event"
    assert Normalize().process([{"message": "no id, no time"}])[0]["event"]["id"] == c["event"]["id"]  # stable
    assert d["@timestamp"] == "2023-11-14T22:13:20.000Z" and "malformed_event_field" in d["tags"]
    for ev in out:
        assert ev["ecs"]["version"] and ev["event"]["ingested"].endswith("Z")


def test_normalize_survives_absurd_nesting() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    ev: Event = {"event": {"id": "deep"}, "x": deep}
    [out] = Normalize().process([ev])
    assert out["event"]["ingested"]


def test_full_chain_order(tmp_path: Path) -> None:
    feed = tmp_path / "intel.txt"
    feed.write_text("f" * 32 + "\n")
    cfg = CollectorConfig.model_validate(
        {"data_dir": str(tmp_path), "enrich": {**enrich_settings().model_dump(), "intel_files": [str(feed)]}}
    )
    chain = build_processors(cfg)
    assert [p.name for p in chain] == [
        "normalize", "enrich_site", "enrich_zone", "enrich_system", "related", "dns_domains", "threat_intel",
    ]  # fmt: skip
    events: list[Event] = [{"event": {"id": "1"}, "host": {"ip": "10.1.0.9"}, "file": {"hash": {"md5": "F" * 32}}}]
    for proc in chain:
        events = proc.process(events)
    ev = events[0]
    assert get(ev, "soc.site") == "hn" and get(ev, "soc.zone") == "party-wan"
    assert "intel_match" in ev["tags"]  # the hash reached intel through related.hash


def test_dns_names_get_their_registered_domain() -> None:
    from collector.pipeline.dns import DnsDomains

    events: list[dict[str, object]] = [
        {"dns": {"question": {"name": "a1b2c3.t.exfil.example.com.vn."}}},
        {"dns": {"question": {"name": "example.org"}}},
        {"dns": {"question": {"name": ""}}},
        {"dns": "not an object"},
        {"event": {"id": "no-dns"}},
    ]
    out = DnsDomains().process(events)
    q0 = out[0]["dns"]["question"]
    assert (q0["registered_domain"], q0["subdomain"], q0["top_level_domain"]) == (
        "example.com.vn",
        "a1b2c3.t.exfil",
        "vn",
    )
    assert (
        out[1]["dns"]["question"]["registered_domain"] == "example.org" and "subdomain" not in out[1]["dns"]["question"]
    )
    assert "registered_domain" not in out[2]["dns"]["question"]
    assert out[3]["dns"] == "not an object" and out[4] == {"event": {"id": "no-dns"}}


_NETWORKS = [("10.0.0.0/8", "a"), ("10.1.0.0/16", "b"), ("192.168.1.0/24", "c"), ("10.1.2.3/32", "d")]
_NETWORKS += [("fd00::/8", "e")]
_OCTET = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["01", "010", "0x1", " 1", "", "1e1"]))
_ADDRESS = st.one_of(
    st.tuples(_OCTET, _OCTET, _OCTET, _OCTET).map(".".join),
    st.sampled_from(["::ffff:10.1.2.3", "fd00::1", "::1", " 10.1.2.3 ", "10.1.2.3\x00", "1.2.3", "10.1.2.3/8"]),
    st.text(max_size=16),
)


@settings(max_examples=500)
@given(_ADDRESS)
def test_cidr_lookup_agrees_with_ipaddress_longest_prefix(address: str) -> None:
    """The inet_pton fast path reads exactly the addresses ``ipaddress`` reads, no more, no fewer."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        expected = None
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        nets = [(ipaddress.ip_network(c), v) for c, v in _NETWORKS]
        hits = [(n.prefixlen, v) for n, v in nets if n.version == ip.version and ip in n]
        expected = max(hits)[1] if hits else None
    assert CidrMap(_NETWORKS).lookup(address) == expected

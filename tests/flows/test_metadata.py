"""DNS, TLS ClientHello and HTTP request metadata: known answers from crafted packets, and fuzzing."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from agent.flows.dns import parse_dns
from agent.flows.http import parse_request
from agent.flows.tls import parse_client_hello
from flows.craft import T0, A, B, at, meter_packets, of, tcp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_pcaps import client_hello


def _dns_pair(name: str, rcode: int = 0, answers: list[DNSRR] | None = None, ident: int = 7) -> list[Packet]:
    q = at(Ether() / IP(src=A, dst=B) / UDP(sport=5555, dport=53) / DNS(id=ident, rd=1, qd=DNSQR(qname=name)), T0)
    r = at(
        Ether()
        / IP(src=B, dst=A)
        / UDP(sport=53, dport=5555)
        / DNS(id=ident, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name), an=answers or []),
        T0 + 0.01,
    )
    return [q, r]


def test_dns_query_and_answer_events() -> None:
    answers = [
        DNSRR(rrname="www.example.com", type="CNAME", ttl=60, rdata="web.example.com"),
        DNSRR(rrname="web.example.com", type="A", ttl=300, rdata="192.0.2.7"),
    ]
    _, events = meter_packets(_dns_pair("www.example.com", answers=answers))
    query, answer = of(events, "network_traffic.dns")
    assert query["dns"]["type"] == "query" and query["dns"]["question"] == {
        "name": "www.example.com",
        "type": "A",
        "class": "IN",
    }
    assert query["dns"]["id"] == 7 and "RD" in query["dns"]["header_flags"]
    assert answer["dns"]["type"] == "answer" and answer["dns"]["response_code"] == "NOERROR"
    assert answer["dns"]["resolved_ip"] == ["192.0.2.7"]
    assert answer["dns"]["answers"] == [
        {"name": "www.example.com", "type": "CNAME", "class": "IN", "ttl": 60, "data": "web.example.com"},
        {"name": "web.example.com", "type": "A", "class": "IN", "ttl": 300, "data": "192.0.2.7"},
    ]
    # the client is the source on both events, so detections group by the asking host
    assert query["source"]["ip"] == answer["source"]["ip"] == A
    assert answer["destination"]["port"] == 53 and answer["network"]["protocol"] == "dns"
    assert query["network"]["community_id"] == answer["network"]["community_id"]
    assert query["event"]["id"] != answer["event"]["id"]


def test_dns_nxdomain() -> None:
    _, events = meter_packets(_dns_pair("nope.example.com", rcode=3))
    answer = of(events, "network_traffic.dns")[1]
    assert answer["dns"]["response_code"] == "NXDOMAIN" and "answers" not in answer["dns"]


def test_dns_over_tcp() -> None:
    msg = bytes(DNS(id=9, rd=1, qd=DNSQR(qname="tcp.example.org", qtype="AAAA")))
    pkt = tcp(A, B, 4444, 53, "PA", T0, len(msg).to_bytes(2, "big") + msg)
    _, events = meter_packets([pkt])
    (query,) = of(events, "network_traffic.dns")
    assert query["dns"]["question"]["name"] == "tcp.example.org" and query["dns"]["question"]["type"] == "AAAA"


def test_dns_compression_loop_is_rejected() -> None:
    header = (1).to_bytes(2, "big") + b"\x01\x00" + b"\x00\x01" + b"\x00" * 6
    looping = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"  # the name points at itself
    assert parse_dns(looping) is None


def test_tls_client_hello_sni_version_and_ja3() -> None:
    _, events = meter_packets([tcp(A, B, 50000, 8443, "PA", T0, client_hello("secure.example.net"))])
    (hello,) = of(events, "network_traffic.tls")
    assert hello["tls"]["client"]["server_name"] == "secure.example.net"
    assert hello["tls"]["version"] == "1.3" and hello["tls"]["version_protocol"] == "tls"
    assert len(hello["tls"]["client"]["ja3"]) == 32
    assert hello["source"]["port"] == 50000 and hello["destination"]["port"] == 8443


def test_http_request() -> None:
    request = b"GET /a/b.php?x=1 HTTP/1.1\r\nHost: Portal.Example.org:8080\r\nUser-Agent: curl/8.0\r\n\r\n"
    _, events = meter_packets([tcp(A, B, 40000, 8080, "PA", T0, request)])
    (http,) = of(events, "network_traffic.http")
    assert http["http"] == {"request": {"method": "GET"}, "version": "1.1"}
    assert http["url"] == {
        "original": "/a/b.php?x=1",
        "path": "/a/b.php",
        "query": "x=1",
        "domain": "portal.example.org",
        "port": 8080,
    }
    assert http["user_agent"]["original"] == "curl/8.0"


def test_http_response_and_binary_are_not_requests() -> None:
    assert parse_request(b"HTTP/1.1 200 OK\r\n\r\n") is None
    assert parse_request(b"GET\x00 / HTTP/1.1\r\n") is None
    assert parse_request(b"GETTING / HTTP/1.1\r\n") is None


def test_metadata_off_emits_flows_only() -> None:
    _, events = meter_packets(_dns_pair("www.example.com"), metadata=False)
    assert of(events, "network_traffic.dns") == [] and len(events) == 1


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_parsers_never_raise_on_garbage(data: bytes) -> None:
    parse_dns(data)
    parse_client_hello(b"\x16\x03\x01" + data)
    parse_client_hello(data)
    parse_request(data)
    parse_request(b"GET / HTTP/1.1\r\n" + data)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=8))
def test_corrupted_real_messages_never_raise(cut: int, junk: bytes) -> None:
    dns = bytes(DNS(id=1, qr=1, qd=DNSQR(qname="a.example.com"), an=DNSRR(rrname="a.example.com", rdata="192.0.2.1")))
    hello = client_hello("x.example.com")
    for msg in (dns, hello):
        pos = min(cut, len(msg) - 1)
        parse_dns(msg[:pos] + junk + msg[pos + len(junk) :])
        parse_client_hello(msg[:pos] + junk + msg[pos + len(junk) :])
        parse_client_hello(msg[:pos])

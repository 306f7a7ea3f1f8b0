"""Craft the reproducible scenario captures in pcaps/ (and an expected-results file next to each).

    .venv/bin/python scripts/make_pcaps.py [--out pcaps]

Every capture is built with scapy from a fixed seed and fixed timestamps, so re-running this script
reproduces the files byte for byte. "External" addresses are documentation ranges (RFC 5737:
203.0.113.0/24, 198.51.100.0/24) and names are under example.com/.net/.org. The expected values
are counted here, from what was crafted, independently of the flow meter that the tests check.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

BASE_TIME = 1_709_280_000.0  # 2024-03-01 08:00:00 UTC
SEED = 20240301
MAC_CLIENT = "02:00:00:00:00:01"
MAC_GATEWAY = "02:00:00:00:00:fe"


@dataclass
class Scenario:
    """Packets of one capture plus the known answers counted while crafting them."""

    name: str
    alert: str
    packets: list[Packet] = field(default_factory=list)
    #: one entry per flow the meter must report (the same tuple twice when idle-separated)
    flows: list[tuple[Any, ...]] = field(default_factory=list)
    dns_queries: int = 0
    dns_answers: int = 0
    dns_names: set[str] = field(default_factory=set)
    dns_rcodes: dict[str, int] = field(default_factory=dict)
    tls_server_names: set[str] = field(default_factory=set)
    tls_hellos: int = 0
    http_requests: int = 0
    http_hosts: set[str] = field(default_factory=set)
    snaplen: int = 65535

    def add(self, pkt: Packet, ts: float, wirelen: int | None = None) -> None:
        pkt.time = ts
        if wirelen is not None:
            pkt.wirelen = wirelen
        self.packets.append(pkt)

    def flow(self, proto: int, a: str, ap: int, b: str, bp: int) -> None:
        self.flows.append((proto, *sorted([(a, ap), (b, bp)])))

    def expected(self) -> dict[str, Any]:
        ip_bytes = 0
        for pkt in self.packets:
            ip_bytes += pkt[IP].len if pkt[IP].len is not None else len(pkt[IP])
        return {
            "file": f"{self.name}.pcap",
            "packets": len(self.packets),
            "ip_bytes": ip_bytes,
            "flows": len(self.flows),
            "dns_queries": self.dns_queries,
            "dns_answers": self.dns_answers,
            "dns_names": len(self.dns_names),
            "dns_response_codes": dict(sorted(self.dns_rcodes.items())),
            "tls_client_hellos": self.tls_hellos,
            "tls_server_names": sorted(self.tls_server_names),
            "http_requests": self.http_requests,
            "http_hosts": sorted(self.http_hosts),
            "alert": self.alert,
        }


def ether() -> Ether:
    return Ether(src=MAC_CLIENT, dst=MAC_GATEWAY)


def client_hello(server_name: str) -> bytes:
    """A minimal but well-formed TLS 1.2/1.3 ClientHello record carrying SNI."""
    name = server_name.encode()
    sni = b"\x00\x00" + (len(name) + 5).to_bytes(2, "big") + (len(name) + 3).to_bytes(2, "big")
    sni += b"\x00" + len(name).to_bytes(2, "big") + name
    versions = b"\x00\x2b\x00\x05\x04\x03\x04\x03\x03"
    groups = b"\x00\x0a\x00\x06\x00\x04\x00\x1d\x00\x17"
    points = b"\x00\x0b\x00\x02\x01\x00"
    extensions = sni + versions + groups + points
    ciphers = b"\x13\x01\x13\x02\xc0\x2f\xc0\x30"
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + len(ciphers).to_bytes(2, "big") + ciphers + b"\x01\x00"
    body += len(extensions).to_bytes(2, "big") + extensions
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def tcp_session(
    sc: Scenario,
    client: str,
    server: str,
    sport: int,
    dport: int,
    t0: float,
    requests: list[bytes],
    responses: list[bytes],
    *,
    step: float = 0.01,
) -> float:
    """A complete TCP connection: handshake, request/response pairs, FIN both ways. Returns end time."""
    rnd = random.Random(f"{client}{sport}{server}{dport}{t0}")
    cseq, sseq = rnd.randrange(1 << 31), rnd.randrange(1 << 31)
    t = t0

    def send(src: str, dst: str, sp: int, dp: int, flags: str, seq: int, ack: int, data: bytes = b"") -> None:
        nonlocal t
        pkt = (
            ether()
            / IP(src=src, dst=dst, id=rnd.randrange(65536))
            / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, window=64240)
        )
        if data:
            pkt = pkt / Raw(data)
        sc.add(pkt, t)
        t += step

    send(client, server, sport, dport, "S", cseq, 0)
    send(server, client, dport, sport, "SA", sseq, cseq + 1)
    cseq += 1
    sseq += 1
    send(client, server, sport, dport, "A", cseq, sseq)
    for req, resp in zip(requests, responses, strict=True):
        send(client, server, sport, dport, "PA", cseq, sseq, req)
        cseq += len(req)
        send(server, client, dport, sport, "PA", sseq, cseq, resp)
        sseq += len(resp)
        send(client, server, sport, dport, "A", cseq, sseq)
    send(client, server, sport, dport, "FA", cseq, sseq)
    send(server, client, dport, sport, "FA", sseq, cseq + 1)
    send(client, server, sport, dport, "A", cseq + 1, sseq + 1)
    sc.flow(6, client, sport, server, dport)
    return t


def dns_exchange(
    sc: Scenario,
    client: str,
    resolver: str,
    sport: int,
    t: float,
    name: str,
    qtype: str = "A",
    answer: str | None = None,
    rcode: int = 0,
    ident: int = 1,
) -> None:
    """One UDP DNS query and its response."""
    query = DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    sc.add(ether() / IP(src=client, dst=resolver, id=ident) / UDP(sport=sport, dport=53) / query, t)
    an = [DNSRR(rrname=name, type=qtype, ttl=300, rdata=answer)] if answer is not None else []
    reply = DNS(id=ident, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=an)
    sc.add(ether() / IP(src=resolver, dst=client, id=ident) / UDP(sport=53, dport=sport) / reply, t + 0.004)
    sc.flow(17, client, sport, resolver, 53)
    sc.dns_queries += 1
    sc.dns_answers += 1
    sc.dns_names.add(name)
    code = {0: "NOERROR", 3: "NXDOMAIN", 2: "SERVFAIL"}[rcode]
    sc.dns_rcodes[code] = sc.dns_rcodes.get(code, 0) + 1


def http_get(host: str, path: str, agent: str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept: */*\r\n\r\n".encode()


HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
SERVER_HELLO = (
    b"\x16\x03\x03\x00\x31\x02\x00\x00\x2d\x03\x03" + bytes(32) + b"\x00\x13\x01\x00\x00\x05\x00\x2b\x00\x02\x03\x04"
)


# ---------------------------------------------------------------------------------------- scenarios
def port_scan() -> Scenario:
    sc = Scenario("port-scan", "port scan from 10.10.5.23 to 10.0.0.10 (1024 TCP ports in about 2 s)")
    scanner, target, sport = "10.10.5.23", "10.0.0.10", 45123
    open_ports = {22, 80, 135, 139, 443, 445}
    t = BASE_TIME
    for port in range(1, 1025):
        sc.add(ether() / IP(src=scanner, dst=target, id=port) / TCP(sport=sport, dport=port, flags="S", seq=1000), t)
        if port in open_ports:
            sc.add(
                ether() / IP(src=target, dst=scanner) / TCP(sport=port, dport=sport, flags="SA", seq=7, ack=1001),
                t + 0.0004,
            )
            sc.add(
                ether() / IP(src=scanner, dst=target) / TCP(sport=sport, dport=port, flags="R", seq=1001), t + 0.0008
            )
        else:
            sc.add(
                ether() / IP(src=target, dst=scanner) / TCP(sport=port, dport=sport, flags="RA", seq=0, ack=1001),
                t + 0.0004,
            )
        sc.flow(6, scanner, sport, target, port)
        t += 0.002
    return sc


def host_sweep() -> Scenario:
    sc = Scenario("host-sweep", "host sweep from 10.10.5.23 across 10.0.0.0/24 (ICMP echo and TCP/445 to 254 hosts)")
    scanner = "10.10.5.23"
    alive = {1, 5, 10, 20, 53, 80, 123, 200}
    t = BASE_TIME
    for host in range(1, 255):
        target = f"10.0.0.{host}"
        sc.add(ether() / IP(src=scanner, dst=target) / ICMP(type=8, id=0x4242, seq=host), t)
        if host in alive:
            sc.add(ether() / IP(src=target, dst=scanner) / ICMP(type=0, id=0x4242, seq=host), t + 0.0005)
        sc.flow(1, scanner, 8, target, 0)
        t += 0.005
    for host in range(1, 255):
        target = f"10.0.0.{host}"
        sc.add(ether() / IP(src=scanner, dst=target) / TCP(sport=51000, dport=445, flags="S", seq=77), t)
        if host in alive:
            sc.add(ether() / IP(src=target, dst=scanner) / TCP(sport=445, dport=51000, flags="RA", ack=78), t + 0.0005)
        sc.flow(6, scanner, 51000, target, 445)
        t += 0.005
    return sc


def beaconing() -> Scenario:
    sc = Scenario(
        "beaconing",
        "beaconing from 10.10.7.50 to 203.0.113.66:443 (cdn-update.example.net) every 60 s +/- 3 s, 72 times",
    )
    rnd = random.Random(SEED)
    t = BASE_TIME
    for i in range(72):
        tcp_session(
            sc,
            "10.10.7.50",
            "203.0.113.66",
            49200 + i,
            443,
            t,
            [client_hello("cdn-update.example.net")],
            [SERVER_HELLO],
        )
        sc.tls_hellos += 1
        sc.tls_server_names.add("cdn-update.example.net")
        t += 60 + rnd.uniform(-3, 3)
    return sc


def dns_tunnel() -> Scenario:
    sc = Scenario(
        "dns-tunnel",
        "DNS tunnelling from 10.10.9.14: 400 long random TXT lookups under t.exfil.example.net via 10.0.0.53",
    )
    rnd = random.Random(SEED)
    t = BASE_TIME
    for i in range(400):
        chunk = base64.b32encode(rnd.randbytes(35)).decode().rstrip("=").lower()
        name = f"{chunk[:50]}.{chunk[50:]}{i:04x}.t.exfil.example.net"
        dns_exchange(sc, "10.10.9.14", "10.0.0.53", 20000 + i, t, name, "TXT", answer="ack", ident=i + 1)
        t += 0.25
    return sc


def bulk_upload() -> Scenario:
    sc = Scenario("bulk-upload", "bulk upload from 10.10.3.8 to 198.51.100.20:443: about 38 MB outbound in 25 s")
    sc.snaplen = 96
    client, server, sport = "10.10.3.8", "198.51.100.20", 50555
    rnd = random.Random(SEED)
    t = BASE_TIME
    cseq, sseq = 1000, 5000
    sc.add(ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=443, flags="S", seq=cseq), t)
    sc.add(
        ether() / IP(src=server, dst=client) / TCP(sport=443, dport=sport, flags="SA", seq=sseq, ack=cseq + 1), t + 0.02
    )
    cseq += 1
    sseq += 1
    sc.add(ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=443, flags="A", seq=cseq, ack=sseq), t + 0.04)
    t += 0.05
    segment = 64000  # GSO-sized segments as a host capture sees them; only the headers are kept
    for i in range(600):
        ip_len = 20 + 20 + segment
        pkt = (
            ether()
            / IP(src=client, dst=server, len=ip_len, id=i)
            / TCP(sport=sport, dport=443, flags="PA", seq=cseq, ack=sseq)
        )
        pkt = pkt / Raw(bytes(rnd.randrange(256) for _ in range(12)))
        sc.add(pkt, t, wirelen=14 + ip_len)
        cseq += segment
        if i % 4 == 3:
            sc.add(
                ether() / IP(src=server, dst=client) / TCP(sport=443, dport=sport, flags="A", seq=sseq, ack=cseq),
                t + 0.001,
            )
        t += 0.04
    sc.add(ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=443, flags="FA", seq=cseq, ack=sseq), t)
    sc.add(
        ether() / IP(src=server, dst=client) / TCP(sport=443, dport=sport, flags="FA", seq=sseq, ack=cseq + 1), t + 0.02
    )
    sc.add(
        ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=443, flags="A", seq=cseq + 1, ack=sseq + 1),
        t + 0.04,
    )
    sc.flow(6, client, sport, server, 443)
    return sc


def wan_to_internet() -> Scenario:
    sc = Scenario(
        "wan-to-internet",
        "party-WAN host 10.10.12.40 connecting directly to Internet addresses 198.51.100.77:80 and 203.0.113.10:443",
    )
    client = "10.10.12.40"
    t = tcp_session(
        sc,
        client,
        "198.51.100.77",
        50100,
        80,
        BASE_TIME,
        [http_get("update.example.org", "/agent/latest.bin?os=win")],
        [HTTP_OK],
    )
    sc.http_requests += 1
    sc.http_hosts.add("update.example.org")
    tcp_session(sc, client, "203.0.113.10", 50101, 443, t + 5, [client_hello("files.example.com")], [SERVER_HELLO])
    sc.tls_hellos += 1
    sc.tls_server_names.add("files.example.com")
    return sc


def office_day() -> Scenario:
    """Benign background that follows the zone plan: office PCs (192.168.1.0/24) may browse the
    Internet and use the data centre; party-WAN PCs (10.10.2.0/24) talk only to the data centre."""
    sc = Scenario("office-day", "none: benign office and party-WAN background (DNS, HTTPS, SMB, NTP)")
    rnd = random.Random(SEED)
    office_resolver, dc_resolver = "192.168.1.2", "10.0.0.53"
    fileserver, ntp, portal = "10.0.0.20", "10.0.0.123", "10.0.0.80"
    sites = {
        "www.example.com": "203.0.113.80",
        "mail.example.org": "203.0.113.25",
        "portal.example.net": "198.51.100.8",
    }
    t = BASE_TIME
    ident = 100
    for minute in range(30):
        client = f"192.168.1.{10 + minute % 5}"
        site = list(sites)[minute % 3]
        sport = 30000 + minute
        ident += 1
        dns_exchange(sc, client, office_resolver, sport, t, site, "A", answer=sites[site], ident=ident)
        tcp_session(sc, client, sites[site], 40000 + minute, 443, t + 0.05, [client_hello(site)], [SERVER_HELLO])
        sc.tls_hellos += 1
        sc.tls_server_names.add(site)
        if minute % 10 == 0:
            ident += 1
            dns_exchange(
                sc, client, office_resolver, sport + 1000, t + 0.5, "wpad.office.example.com", "A", rcode=3, ident=ident
            )
        smb = b"\x00\x00\x00\x40\xfeSMB" + bytes(rnd.randrange(256) for _ in range(56))
        tcp_session(sc, client, fileserver, 45000 + minute, 445, t + 1, [smb, smb], [smb, smb])
        if minute % 15 == 0:
            ntp_req = b"\x23" + bytes(47)
            sc.add(ether() / IP(src=client, dst=ntp) / UDP(sport=123, dport=123) / Raw(ntp_req), t + 2)
            sc.add(ether() / IP(src=ntp, dst=client) / UDP(sport=123, dport=123) / Raw(b"\x24" + bytes(47)), t + 2.001)
            sc.flow(17, client, 123, ntp, 123)
        if minute % 3 == 1:  # a party-WAN PC uses the data-centre portal through the data-centre resolver
            wan = f"10.10.2.{21 + minute % 2}"
            ident += 1
            dns_exchange(
                sc, wan, dc_resolver, sport + 2000, t + 10, "intranet.example.org", "A", answer=portal, ident=ident
            )
            tcp_session(
                sc, wan, portal, 41000 + minute, 443, t + 10.05, [client_hello("intranet.example.org")], [SERVER_HELLO]
            )
            sc.tls_hellos += 1
            sc.tls_server_names.add("intranet.example.org")
            tcp_session(sc, wan, fileserver, 46000 + minute, 445, t + 11, [smb], [smb])
        t += 60
    return sc


SCENARIOS: tuple[Callable[[], Scenario], ...] = (
    port_scan,
    host_sweep,
    beaconing,
    dns_tunnel,
    bulk_upload,
    wan_to_internet,
    office_day,
)


def write(sc: Scenario, out: Path) -> None:
    path = out / f"{sc.name}.pcap"
    with PcapWriter(str(path), linktype=1, snaplen=sc.snaplen, sync=False) as writer:
        for pkt in sc.packets:
            writer.write(pkt)
    (out / f"{sc.name}.expected.json").write_text(json.dumps(sc.expected(), indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Craft the scenario captures")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "pcaps")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    random.seed(SEED)
    for make in SCENARIOS:
        sc = make()
        write(sc, args.out)
        print(f"{sc.name}: {len(sc.packets)} packets, {len(sc.flows)} flows")


if __name__ == "__main__":
    main()

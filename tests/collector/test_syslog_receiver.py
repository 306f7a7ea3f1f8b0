"""Syslog framing, vendor parsing, limits, store outages and fuzzing."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from peers import wait_for

from collector.config import SyslogSettings
from collector.store.base import StoreError
from collector.syslog.framing import StreamFramer
from collector.syslog.message import MessageParser
from collector.syslog.server import SyslogReceiver

PARSER = MessageParser("Asia/Ho_Chi_Minh")


def frames(chunks: list[bytes], max_bytes: int = 100) -> list[tuple[bytes, bool]]:
    framer = StreamFramer(max_bytes)
    out = [f for chunk in chunks for f in framer.feed(chunk)] + framer.flush()
    return [(f.data, f.truncated) for f in out]


def test_octet_counting_split_anywhere() -> None:
    stream = b"11 <13>hello 1\n9 <13>abcde"
    for cut in range(len(stream)):
        assert frames([stream[:cut], stream[cut:]]) == [(b"<13>hello 1", False), (b"<13>abcde", False)]


def test_line_framing_lf_crlf_and_nul() -> None:
    assert frames([b"<13>a\r\n<13>b\x00<13>c\n<13>d"]) == [
        (b"<13>a", False), (b"<13>b", False), (b"<13>c", False), (b"<13>d", False)
    ]  # fmt: skip


def test_over_long_messages_truncated_and_flagged_then_stream_continues() -> None:
    assert frames([b"<13>" + b"x" * 300 + b"\n<13>next\n"], max_bytes=50) == [
        (b"<13>" + b"x" * 46, True),
        (b"<13>next", False),
    ]
    counted = b"300 " + b"y" * 300 + b"3 <1>"
    assert frames([counted[:100], counted[100:]], max_bytes=50) == [(b"y" * 50, True), (b"<1>", False)]


def test_broken_octet_count_falls_back_to_lines() -> None:
    framer = StreamFramer(100)
    out = framer.feed(b"5 <13>a<13>oops no length\n")
    assert [f.data for f in out] == [b"<13>a", b"<13>oops no length"]
    assert framer.framing_errors == 1


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10), st.integers(1, 200))
def test_fuzz_framer_bounded_and_never_raises(chunks: list[bytes], max_bytes: int) -> None:
    for data, _truncated in frames(chunks, max_bytes):
        assert 0 < len(data) <= max_bytes


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_parser_always_returns_an_event(raw: bytes) -> None:
    event = PARSER.parse(raw, "10.0.0.1", 514)
    assert event["event"]["original"] is not None and event["event"]["id"]
    assert event["observer"]["ip"] == "10.0.0.1"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_cef_and_fortinet_bodies(body: str) -> None:
    for prefix in ("<134>CEF:0|", "CEF:", "<189>devname=a type=traffic "):
        event = PARSER.parse((prefix + body).encode(), "10.0.0.1", 514)
        assert event["event"]["dataset"] in ("syslog", "cef", "fortinet.firewall")


def test_cef_mapping_with_escapes() -> None:
    raw = (
        rb"<134>Jan 10 10:00:00 ids CEF:0|Trend\|Micro|Deep Security|20.0|4000|Malware \\ found|8|"
        rb"src=10.1.2.3 dst=203.0.113.5 spt=51515 dpt=443 proto=TCP suser=an.nv act=blocked "
        rb"msg=file a\=b quarantined cs1Label=rule cs1=R 1 dvc=not-an-ip"
    )
    e = PARSER.parse(raw, "10.9.9.9", 40000)
    assert e["event"]["dataset"] == "cef"
    assert e["observer"]["vendor"] == "Trend|Micro" and e["observer"]["product"] == "Deep Security"
    assert e["observer"]["version"] == "20.0" and e["observer"]["ip"] == "10.9.9.9"
    assert e["event"]["code"] == "4000" and e["event"]["severity"] == 8
    assert e["cef"]["name"] == "Malware \\ found"
    assert e["source"] == {"ip": "10.1.2.3", "port": 51515, "user": {"name": "an.nv"}}
    assert e["destination"] == {"ip": "203.0.113.5", "port": 443}
    assert e["network"]["transport"] == "tcp" and e["event"]["action"] == "blocked"
    assert e["message"] == "file a=b quarantined"
    assert e["cef"]["extensions"]["cs1"] == "R 1" and e["cef"]["extensions"]["dvc"] == "not-an-ip"
    assert e["host"]["hostname"] == "ids"


def test_fortigate_traffic_log() -> None:
    raw = (
        b'<189>date=2024-05-01 time=10:00:01 devname="FG-HN 01" devid="FG100FTK1" eventtime=1714532401000000000 '
        b'tz="+0700" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
        b'srcip=10.10.1.5 srcport=51000 srcintf="lan" dstip=8.8.8.8 dstport=53 dstintf="wan1" proto=17 '
        b'action="deny" policyid=7 service="DNS" sentbyte=120 rcvdbyte=0 sentpkt=1 msg="blocked by \\"policy\\""'
    )
    e = PARSER.parse(raw, "10.10.0.1", 514)
    assert e["event"]["dataset"] == "fortinet.firewall"
    assert e["@timestamp"] == "2024-05-01T03:00:01.000Z"
    assert e["source"] == {"ip": "10.10.1.5", "port": 51000, "bytes": 120, "packets": 1}
    assert e["destination"]["ip"] == "8.8.8.8" and e["destination"]["port"] == 53
    assert e["network"]["transport"] == "udp" and e["network"]["protocol"] == "dns"
    assert e["event"]["action"] == "deny" and e["event"]["outcome"] == "failure"
    assert e["observer"]["name"] == "FG-HN 01" and e["observer"]["vendor"] == "Fortinet"
    assert e["observer"]["ingress"]["interface"]["name"] == "lan"
    assert e["fortinet"]["firewall"]["subtype"] == "forward"
    assert e["message"] == 'blocked by "policy"'
    assert e["rule"]["id"] == "7"


def test_bad_lines_kept_with_error() -> None:
    e = PARSER.parse(b"\xff\xfe not syslog", "10.0.0.1", 514)
    assert e["soc"]["parse_error"] and "_invalid_utf8" in e["tags"]
    assert e["event"]["original"].endswith("not syslog")


class FlakyStore:
    def __init__(self) -> None:
        self.healthy = threading.Event()
        self.events: list[dict[str, Any]] = []
        self.failures = 0

    def __call__(self, events: list[dict[str, Any]]) -> None:
        if not self.healthy.is_set():
            self.failures += 1
            raise StoreError("down")
        self.events.extend(events)


def _receiver(tmp_path: Path, store: Any, **kw: Any) -> SyslogReceiver:
    s = SyslogSettings(enabled=True, udp_port=0, tcp_port=0, tls_port=0, flush_interval=0.05, max_message_bytes=200,
                       batch_size=50)  # fmt: skip
    rx = SyslogReceiver(s, store, state_dir=tmp_path / "state", **kw)
    rx.batcher.retry_initial = rx.batcher.retry_max = 0.05
    rx.start()
    return rx


def test_store_outage_loses_nothing_and_tcp_gets_backpressure(tmp_path: Path) -> None:
    store = FlakyStore()
    rx = _receiver(tmp_path, store, max_queued_events=100)
    try:
        total = 30_000
        payload = b"".join(b"<13>1 - h app - - - msg %d\n" % i for i in range(total))
        with socket.create_connection(("127.0.0.1", rx.ports["tcp"])) as conn:
            sender = threading.Thread(target=conn.sendall, args=(payload,))
            sender.start()
            assert wait_for(lambda: rx.stats()["queued"] >= 100)
            assert wait_for(lambda: store.failures >= 3)
            assert rx.stats()["received"] < total  # reading stopped: the rest waits in the sender
            store.healthy.set()
            sender.join(30)
            assert wait_for(lambda: len(store.events) == total, 30)
        assert sorted(e["message"] for e in store.events) == sorted(f"msg {i}" for i in range(total))
        stats = rx.stats()
        assert stats["handle_errors"] >= 1 and stats["dropped_queue_full"] == 0
    finally:
        rx.stop()


def test_udp_truncation_and_counters(tmp_path: Path) -> None:
    store = FlakyStore()
    store.healthy.set()
    rx = _receiver(tmp_path, store)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>1 - h app - - - " + b"z" * 1000, ("127.0.0.1", rx.ports["udp"]))
            s.sendto(b"\x00\xff garbage", ("127.0.0.1", rx.ports["udp"]))
        assert wait_for(lambda: len(store.events) == 2)
        stats = rx.stats()
        assert stats["truncated"] == 1 and stats["failed"] == 1 and stats["received"] == 2
        long = next(e for e in store.events if "_truncated" in e.get("tags", []))
        assert len(long["event"]["original"]) == 200
    finally:
        rx.stop()


def test_tls_required_client_certificate_refuses_anonymous(tmp_path: Path) -> None:
    store = FlakyStore()
    store.healthy.set()
    rx = _receiver(tmp_path, store, client_auth="required")
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "state" / "ca" / "ca.crt"))
        with (
            socket.create_connection(("127.0.0.1", rx.ports["tls"])) as raw,
            pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)),
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"5 <13>x")
            tls.recv(10)
        assert wait_for(lambda: rx.stats()["tls_handshake_failures"] == 1)
        assert store.events == []
    finally:
        rx.stop()


def test_tls_octet_counted_with_optional_client_auth(tmp_path: Path) -> None:
    store = FlakyStore()
    store.healthy.set()
    rx = _receiver(tmp_path, store)
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "state" / "ca" / "ca.crt"))
        msg = b"<134>CEF:0|V|P|1|7|Login|3|src=10.0.0.9 suser=bob"
        with (
            socket.create_connection(("127.0.0.1", rx.ports["tls"])) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"%d %s" % (len(msg), msg) * 3)
        assert wait_for(lambda: len(store.events) == 3)
        assert {e["source"]["ip"] for e in store.events} == {"10.0.0.9"}
    finally:
        rx.stop()


def test_connection_limit(tmp_path: Path) -> None:
    store = FlakyStore()
    store.healthy.set()
    rx = _receiver(tmp_path, store, max_connections=2)
    try:
        conns = [socket.create_connection(("127.0.0.1", rx.ports["tcp"])) for _ in range(3)]
        assert wait_for(lambda: rx.stats()["connections_refused"] == 1)
        for c in conns:
            c.close()
    finally:
        rx.stop()

"""CEF forwarding to a real peer: the collector's own syslog receiver over TCP, TLS and UDP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from collector.config import SyslogSettings
from collector.pipeline.cef_forward import CefForwarder, CefForwardSettings, escape_extension, escape_header, to_cef
from collector.syslog.cef import parse_extension, split_header
from collector.syslog.server import SyslogReceiver
from soc_common.alert import Alert
from soc_common.ecs import get
from tests.handover.pki import Pki, make_pki

HOSTILE = "a|b\\c=d\ne \\= |x= y=z"


def _alert(**extra: Any) -> Alert:
    values: dict[str, Any] = {
        "id": "al-1",
        "rule_id": "5af54681-df95-4c26-854f-2565e13cfab0",
        "rule_title": "Brute force | via \\ RDP",
        "severity": "high",
        "timestamp": datetime(2026, 3, 1, 8, 30, 15, 123000, tzinfo=UTC),
        "detected_at": datetime(2026, 3, 1, 8, 31, tzinfo=UTC),
        "host_name": "pc-07.hn.local",
        "user_name": "nguyen.van.a",
        "source_ip": "10.1.2.3",
        "destination_ip": "10.9.8.7",
        "events": [{"source": {"port": 51515}, "destination": {"port": 3389}}],
        "event_ids": ["e1", "e2", "e3"],
        "techniques": ["T1110"],
        "site": "hn",
    }
    values.update(extra)
    return Alert(**values)


class Peer:
    """A SyslogReceiver on loopback collecting what it parsed."""

    def __init__(self, pki: Pki | None) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        settings = SyslogSettings(
            enabled=True,
            host="127.0.0.1",
            udp_port=0,
            tcp_port=0,
            tls_port=0 if pki else None,
            tls_cert=pki.server_cert if pki else None,
            tls_key=pki.server_key if pki else None,
            tls_client_auth="none",
            flush_interval=0.05,
            timezone="UTC",
        )
        self.receiver = SyslogReceiver(settings, self._handle, client_auth="none")

    def _handle(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend(events)

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= n:
                    return list(self.events)
            time.sleep(0.02)
        raise AssertionError(f"peer got {len(self.events)} of {n} events")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def peer(pki: Pki, tmp_path: Any) -> Iterator[Peer]:
    p = Peer(pki)
    p.receiver.state_dir = tmp_path
    p.receiver.start()
    yield p
    p.receiver.stop()


def _forwarder(peer: Peer, protocol: Literal["tcp", "tls", "udp"], pki: Pki, **extra: Any) -> CefForwarder:
    settings = CefForwardSettings(
        enabled=True,
        host="127.0.0.1",
        port=peer.receiver.ports[protocol],
        protocol=protocol,
        ca_file=pki.ca_cert,
        retry_min=0.05,
        retry_max=0.2,
        **extra,
    )
    return CefForwarder(settings, hostname="soc-hn").start()


@pytest.mark.parametrize("protocol", ["tcp", "tls", "udp"])
def test_alert_fields_arrive_parsed_at_a_real_syslog_peer(
    peer: Peer, pki: Pki, protocol: Literal["tcp", "tls", "udp"]
) -> None:
    forwarder = _forwarder(peer, protocol, pki)
    try:
        forwarder.emit([_alert()])
        assert forwarder.flush(10)
        (event,) = peer.wait(1)
    finally:
        forwarder.close()
    assert event["event"]["dataset"] == "cef"
    assert get(event, "observer.vendor") == "SOC" and get(event, "observer.product") == "SOC Platform"
    assert get(event, "event.code") == "5af54681-df95-4c26-854f-2565e13cfab0"
    assert event["message"] == "Brute force | via \\ RDP"
    assert get(event, "event.severity") == 8
    assert get(event, "source.ip") == "10.1.2.3" and get(event, "destination.ip") == "10.9.8.7"
    assert get(event, "source.port") == 51515 and get(event, "destination.port") == 3389
    assert get(event, "source.user.name") == "nguyen.van.a"
    assert get(event, "destination.domain") == "pc-07.hn.local"
    assert event["@timestamp"].startswith("2026-03-01T08:30:15.123")
    ext = event["cef"]["extensions"]
    assert ext["cs1Label"] == "ruleId" and ext["cs2"] == "T1110" and ext["cs3"] == "hn" and ext["cnt"] == "3"
    assert forwarder.stats()["sent"] == 1 and forwarder.stats()["pending"] == 0


def test_hostile_field_values_are_escaped_and_round_trip(peer: Peer, pki: Pki) -> None:
    forwarder = _forwarder(peer, "tcp", pki)
    try:
        forwarder.emit([_alert(user_name=HOSTILE, host_name="h=1 act=delete", rule_title="t|i\\t=le")])
        forwarder.emit([_alert(id="al-2", user_name="after")])  # the next message is not disturbed
        assert forwarder.flush(10)
        first, second = sorted(peer.wait(2), key=lambda e: e["cef"]["extensions"]["cs4"])
    finally:
        forwarder.close()
    assert get(first, "source.user.name") == HOSTILE
    assert get(first, "destination.domain") == "h=1 act=delete"
    assert "act" not in first["cef"]["extensions"]  # no injected extension key
    assert first["message"] == "t|i\\t=le"
    assert get(second, "source.user.name") == "after"


def test_escaping_follows_the_cef_rules() -> None:
    assert escape_header("a|b\\c=d\ne") == "a\\|b\\\\c=d e"
    assert escape_extension("a|b\\c=d\ne\r") == "a|b\\\\c\\=d\\ne\\r"
    line = to_cef(_alert(rule_title="x|y"), CefForwardSettings())
    header, ext = split_header(line)
    assert header[5] == "x|y" and header[6] == "8"
    assert parse_extension(ext)["dst"] == "10.9.8.7"


@pytest.mark.parametrize(("severity", "cef"), [("informational", 1), ("low", 3), ("medium", 5), ("critical", 10)])
def test_severity_mapping(severity: str, cef: int) -> None:
    header, _ = split_header(to_cef(_alert(severity=severity), CefForwardSettings()))
    assert header[6] == str(cef)


def test_queue_is_bounded_and_retries_until_the_peer_is_back(pki: Pki) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = CefForwardSettings(
        host="127.0.0.1", port=port, protocol="tcp", queue_size=3, retry_min=0.05, retry_max=0.1, timeout=1
    )
    forwarder = CefForwarder(settings, hostname="soc-hn").start()
    try:
        forwarder.emit([_alert(id=f"al-{i}") for i in range(5)])
        time.sleep(0.3)  # nobody listens: the sender fails and keeps retrying
        stats = forwarder.stats()
        assert stats["dropped"] == 2 and stats["pending"] == 3 and stats["send_errors"] >= 1 and stats["sent"] == 0
        peer_settings = SyslogSettings(
            enabled=True, host="127.0.0.1", udp_port=None, tcp_port=port, tls_port=None, flush_interval=0.05
        )
        events: list[dict[str, Any]] = []
        receiver = SyslogReceiver(peer_settings, events.extend)
        receiver.start()
        try:
            assert forwarder.flush(10)
            deadline = time.monotonic() + 10
            while len(events) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            receiver.stop()
    finally:
        forwarder.close()
    assert sorted(e["cef"]["extensions"]["cs4"] for e in events) == ["al-2", "al-3", "al-4"]  # the newest survive


def test_settings_refuse_half_a_client_certificate(pki: Pki) -> None:
    with pytest.raises(ValueError):
        CefForwardSettings(client_cert=pki.client_cert)

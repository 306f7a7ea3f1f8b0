"""Syslog receiver against real senders: util-linux ``logger`` and ``rsyslogd`` (TCP and TLS)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import Collect, require, rsyslogd, wait_for

from collector.config import SyslogSettings
from collector.syslog.server import SyslogReceiver

pytestmark = pytest.mark.peers


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[SyslogReceiver, Collect]]:
    sink = Collect()
    settings = SyslogSettings(enabled=True, udp_port=0, tcp_port=0, tls_port=0, flush_interval=0.05)
    rx = SyslogReceiver(settings, sink, state_dir=tmp_path / "state")
    rx.start()
    yield rx, sink
    rx.stop()


LOGGER_MODES = {
    "udp-5424": ("udp", ["-d", "--rfc5424"]),
    "udp-3164": ("udp", ["-d", "--rfc3164"]),
    "tcp-5424-lf": ("tcp", ["-T", "--rfc5424"]),
    "tcp-3164-lf": ("tcp", ["-T", "--rfc3164"]),
    "tcp-5424-octet": ("tcp", ["-T", "--rfc5424", "--octet-count"]),
}


@pytest.mark.parametrize("mode", sorted(LOGGER_MODES))
def test_logger_messages_arrive_parsed(mode: str, receiver: tuple[SyslogReceiver, Collect]) -> None:
    rx, sink = receiver
    proto, flags = LOGGER_MODES[mode]
    logger = require("logger")
    extra = ["--sd-id", "zoo@32473", "--sd-param", 'tiger="hungry"'] if "--rfc5424" in flags else []
    for i in range(20):
        subprocess.run(
            [logger, "-n", "127.0.0.1", "-P", str(rx.ports[proto]), *flags, *extra, "-t", "socapp",
             "-p", "auth.warning", f"message {mode} {i}"],
            check=True, timeout=10,
        )  # fmt: skip
    assert wait_for(lambda: len(sink.events) == 20)
    assert sorted(sink.messages()) == sorted(f"message {mode} {i}" for i in range(20))
    event = sink.events[0]
    assert event["event"]["dataset"] == "syslog"
    assert event["log"]["syslog"]["appname"] == "socapp"
    assert event["log"]["syslog"]["severity"]["name"] == "warning"
    assert event["log"]["syslog"]["facility"]["name"] == "auth"
    assert event["observer"]["ip"] == "127.0.0.1"
    assert event["log"]["source"]["address"].startswith("127.0.0.1:")
    if extra:
        assert event["log"]["syslog"]["structured_data"]["zoo@32473"] == {"tiger": "hungry"}
    assert "soc" not in event
    assert rx.stats()["failed"] == 0


RSYSLOG_CONF = """
global(workDirectory="{work}" DefaultNetstreamDriverCAFile="{ca}" maxMessageSize="64k")
module(load="imfile" mode="polling" PollingInterval="1")
input(type="imfile" File="{infile}" Tag="webapp" ruleset="forward" freshStartTail="off")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="{framing}"
         template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="{tls}" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="{driver}" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost" template="RSYSLOG_SyslogProtocol23Format")
}}
"""


@pytest.mark.parametrize(("driver", "framing"), [("gtls", "octet-counted"), ("ossl", "traditional")])
def test_rsyslog_forwards_over_tcp_and_tls(
    driver: str, framing: str, tmp_path: Path, receiver: tuple[SyslogReceiver, Collect]
) -> None:
    rx, sink = receiver
    module = Path(f"/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_{driver}.so")
    if not module.exists():
        message = (
            f"rsyslog {driver} driver missing (Debian package rsyslog-{'gnutls' if driver == 'gtls' else 'openssl'})"
        )
        if __import__("os").environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    infile = tmp_path / "app.log"
    lines = [f"line {i} user=alice ip=10.0.0.{i % 250} \u0111\u00e3 x\u1eed l\u00fd" for i in range(200)]
    infile.write_text("\n".join(lines[:100]) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    conf = RSYSLOG_CONF.format(
        work=work, ca=tmp_path / "state" / "ca" / "ca.crt", infile=infile, tcp=rx.ports["tcp"], tls=rx.ports["tls"],
        driver=driver, framing=framing,
    )  # fmt: skip
    with rsyslogd(tmp_path, conf):
        with infile.open("a") as fh:  # appended while rsyslog runs
            fh.write("\n".join(lines[100:]) + "\n")
        assert wait_for(lambda: len(sink.events) >= 400, timeout=30), rx.stats()
    for e in sink.events:
        assert e["log"]["syslog"]["appname"] == "webapp"
        assert e["log"]["syslog"]["version"] == 1
        assert "soc" not in e
    assert sorted(sink.messages()) == sorted(lines * 2)
    stats = rx.stats()
    assert stats["connections_total"] >= 2 and stats["tls_handshake_failures"] == 0
    assert stats["received"] == 400 and stats["failed"] == 0

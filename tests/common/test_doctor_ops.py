"""``soc doctor`` deployment checks against real servers: a running collector, osmem-server, HTTP peers.

Clock skew of this host (the collector's ``Date`` header), of agents (the collector's per-agent
skew on /metrics, fed by the real shipper's ``X-Soc-Sent-At``), queue depths and Elasticsearch health.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import agent.shipper
from agent.config import ShippingSettings
from agent.shipper import Shipper
from agent.spool import Spool
from soc_common.doctor import collect
from soc_common.doctor_certs import check_agent_certificates, check_certificate_file
from soc_common.doctor_ops import check_clock, check_collector_metrics, check_elasticsearch_health, scrape
from soc_common.ecs import new_event, stable_event_id
from tests.deploy.live_collector import METRICS_TOKEN, LiveCollector, live_collector


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveCollector]:
    with live_collector(tmp_path) as running:
        yield running


class _Peer:
    """A real HTTP server whose answer (status, JSON body, Date header) a test chooses."""

    def __init__(self, body: dict[str, Any], date: datetime | None = None) -> None:
        payload = json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return format_datetime(date, usegmt=True) if date else super().date_time_string(timestamp)

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _ship(live: LiveCollector, data_dir: Path, prefix: str, n: int = 5) -> None:
    creds = live.enroll(data_dir, hostname=prefix)
    settings = ShippingSettings()
    spool = Spool(data_dir / "spool", _spool_settings())
    spool.append([new_event(dataset="test.doctor", event_id=stable_event_id(prefix, i)) for i in range(n)])
    shipper = Shipper(spool, settings, live.ingest_url, creds.ssl_context)
    assert shipper.drain(threading.Event(), timeout=20)


def _spool_settings() -> Any:
    from agent.config import AgentConfig

    return AgentConfig.model_validate({"sources": []}).spool


def test_agent_clock_skew_reaches_metrics_and_doctor(
    live: LiveCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ship(live, tmp_path / "good", "good")
    monkeypatch.setattr(agent.shipper, "utc_now", lambda: datetime.now(UTC) + timedelta(hours=1))
    _ship(live, tmp_path / "ahead", "ahead")
    samples = scrape(live.metrics_url, METRICS_TOKEN)
    skews = sorted(v for _, v in samples["soc_collector_agent_clock_skew_seconds"])
    assert len(skews) == 2 and abs(skews[0]) < 5 and 3590 < skews[1] < 3610, skews
    [(_, largest)] = samples["soc_collector_agent_clock_skew_max_abs_seconds"]
    assert largest == skews[1]
    findings = {f.check: f for f in check_collector_metrics("collector", live.metrics_url, METRICS_TOKEN)}
    clocks = findings["agent clocks"]
    assert clocks.status == "warn" and "1 of 2 agents" in clocks.detail and "+36" in clocks.detail, clocks


def test_agents_without_the_send_time_header_still_ship_and_report_no_skew(live: LiveCollector, tmp_path: Path) -> None:
    creds = live.enroll(tmp_path / "old")
    body = json.dumps(new_event(dataset="test.doctor", event_id="old-1")).encode() + b"\n"
    status, answer = live.post(creds, body, {"Content-Type": "application/x-ndjson"})
    assert status == 200 and json.loads(answer)["accepted"] == 1
    status, _ = live.post(creds, body, {"Content-Type": "application/x-ndjson", "X-Soc-Sent-At": "yesterday-ish"})
    assert status == 200  # a bad header is counted, never a reason to refuse data
    samples = scrape(live.metrics_url, METRICS_TOKEN)
    assert samples.get("soc_collector_agent_clock_skew_seconds", []) == []
    assert samples["soc_collector_agent_bad_sent_at_total"] == [({}, 1.0)]
    findings = {f.check: f.status for f in check_collector_metrics("collector", live.metrics_url, METRICS_TOKEN)}
    assert findings["agent clocks"] == "skip"


def test_queue_depth_thresholds(live: LiveCollector) -> None:
    gauge = live.collector.metrics.queue_depth
    for depth, expected in ((0, "ok"), (10, "warn"), (100, "fail")):
        gauge.labels(queue="detection").set(depth)
        findings = {f.check: f for f in check_collector_metrics("collector", live.metrics_url, METRICS_TOKEN)}
        assert findings["queue detection"].status == expected, findings


def test_metrics_unreachable_or_wrong_token_is_a_warning(live: LiveCollector) -> None:
    [finding] = check_collector_metrics("collector", live.metrics_url, "wrong-token")
    assert finding.status == "warn" and "401" in finding.detail


def test_host_clock_against_the_collector_over_tls(live: LiveCollector) -> None:
    [finding] = check_clock("agent", live.ingest_url, live.ca_file)
    assert finding.status == "ok", finding


@pytest.mark.parametrize(("offset", "status"), [(timedelta(hours=-1), "fail"), (timedelta(minutes=1), "warn")])
def test_host_clock_skew_is_graded(offset: timedelta, status: str) -> None:
    peer = _Peer({"status": "ok"}, date=datetime.now(UTC) + offset)
    try:
        [finding] = check_clock("agent", peer.url)
    finally:
        peer.close()
    assert finding.status == status, finding
    assert ("ahead of" in finding.detail) == (offset < timedelta(0))


def test_elasticsearch_health_of_a_real_cluster() -> None:
    osmem_server = pytest.importorskip("osmem_server", reason="osmem-server provides the ES API in tests")
    server = osmem_server.OsmemServer.start(japanese=False)
    try:
        [finding] = check_elasticsearch_health("collector", ["http://127.0.0.1:1", server.url])
    finally:
        server.close()
    assert finding.status == "ok" and finding.detail.startswith("green"), finding


@pytest.mark.parametrize(("colour", "status"), [("yellow", "warn"), ("red", "fail")])
def test_elasticsearch_health_colours(colour: str, status: str) -> None:
    peer = _Peer({"status": colour, "number_of_nodes": 1, "unassigned_shards": 5})
    try:
        [finding] = check_elasticsearch_health("collector", [peer.url])
    finally:
        peer.close()
    assert finding.status == status and "5 unassigned" in finding.detail


def test_elasticsearch_unreachable_fails() -> None:
    [finding] = check_elasticsearch_health("collector", ["http://127.0.0.1:1"])
    assert finding.status == "fail"


def test_doctor_collector_role_includes_the_running_checks(live: LiveCollector) -> None:
    assert live.collector.metrics_server is not None
    config = live.config_file.read_text().replace(
        "[metrics]\nport = 0", f"[metrics]\nport = {live.collector.metrics_server.port}"
    )
    live.config_file.write_text(config)  # as deployed: the configured port is the one the collector listens on
    findings = collect({"collector": live.config_file}, ["collector"])
    checks = {f.check: f.status for f in findings}
    assert checks["elasticsearch cluster"] == "skip"
    assert checks["agent clocks"] == "skip"  # no agent has shipped yet
    assert "queue detection" in checks or checks.get("queues") == "skip"
    assert checks["collector CA"] == "ok" and checks["ingest server certificate"] == "ok"


def test_certificates_near_expiry_are_reported(live: LiveCollector, tmp_path: Path) -> None:
    creds = live.enroll(tmp_path / "agent", hostname="pc-cert")
    config = live.collector.config
    [ca] = check_certificate_file("collector", "collector CA", Path(config.ca_dir) / "ca.crt")
    [server] = check_certificate_file("collector", "server", Path(config.tls_dir) / "server.crt")
    [agents] = check_agent_certificates("collector", Path(config.registry_path))
    assert (ca.status, server.status, agents.status) == ("ok", "ok", "ok"), (ca, server, agents)
    from cryptography import x509

    expires = x509.load_pem_x509_certificate(creds.cert_path.read_bytes()).not_valid_after_utc
    [soon] = check_agent_certificates("collector", Path(config.registry_path), now=expires - timedelta(days=10))
    assert soon.status == "warn" and "pc-cert" in soon.detail and "10 d" in soon.detail, soon
    [gone] = check_agent_certificates("collector", Path(config.registry_path), now=expires + timedelta(days=1))
    assert gone.status == "fail", gone
    [late] = check_certificate_file("agent", "client", creds.cert_path, now=expires + timedelta(days=1))
    assert late.status == "fail"

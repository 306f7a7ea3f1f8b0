"""A real collector (ingest over mTLS, pipeline, SQLite store, /metrics) in-process, and an agent enrolled with it.

Shared by the upgrade/compatibility tests and the doctor tests: everything is real and on loopback
ports chosen by the kernel; only detection is off (it is not what these tests look at).
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.enroll import Credentials, enroll
from collector.config import CollectorConfig
from collector.runtime import Collector

METRICS_TOKEN = "doctor-test-metrics-token"


@dataclass
class LiveCollector:
    collector: Collector
    config_file: Path

    @property
    def ingest_url(self) -> str:
        assert self.collector.ingest is not None
        return f"https://127.0.0.1:{self.collector.ingest.port}"

    @property
    def metrics_url(self) -> str:
        assert self.collector.metrics_server is not None
        return f"http://127.0.0.1:{self.collector.metrics_server.port}/metrics"

    @property
    def ca_file(self) -> Path:
        assert self.collector.ingest is not None
        return Path(self.collector.ingest.ca.cert_path)

    def enroll(self, data_dir: Path, hostname: str = "pc-01") -> Credentials:
        assert self.collector.registry is not None
        token, _ = self.collector.registry.create_token(site="tinh-uy", uses=1, ttl_seconds=300)
        return enroll(self.ingest_url, token, data_dir, ca_file=self.ca_file, hostname=hostname)

    def post(self, creds: Credentials, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One raw ``POST /v1/events`` with the agent's client certificate, exactly these bytes and headers."""
        assert self.collector.ingest is not None
        context: ssl.SSLContext = creds.ssl_context()
        conn = http.client.HTTPSConnection("127.0.0.1", self.collector.ingest.port, timeout=10, context=context)
        try:
            conn.request("POST", "/v1/events", body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@contextmanager
def live_collector(tmp_path: Path) -> Iterator[LiveCollector]:
    data_dir = tmp_path / "collector"
    config_file = tmp_path / "collector.toml"
    config_file.write_text(
        f'data_dir = "{data_dir}"\n[ingest]\nport = 0\nagent_cache_seconds = 0\n'
        '[detection]\nenabled = false\n[alerts]\ndatabase_url = ""\n[retention]\nenabled = false\n'
        f'[metrics]\nport = 0\nbearer_token = "{METRICS_TOKEN}"\n'
        "[syslog]\nenabled = false\n[netflow]\nenabled = false\n",
        encoding="utf-8",
    )
    from soc_common.config import load_config

    config = load_config(CollectorConfig, config_file, role="collector")
    collector = Collector(config)
    collector.start()
    try:
        yield LiveCollector(collector, config_file)
    finally:
        collector.stop()

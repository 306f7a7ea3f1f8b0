"""Test harness for the collector core: a real ingest server on loopback TLS over the real SQLite store,
and a minimal agent (key, CSR, enrolment, mTLS shipping) written against docs/agent-protocol.md."""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.config import CollectorConfig
from collector.ingest.server import IngestServer
from collector.pipeline.runner import Pipeline, build_pipeline
from collector.store.base import StoreError, WriteResult
from collector.store.sqlite import SqliteEventStore
from soc_common.ecs import Event, new_event


class SwitchableStore(SqliteEventStore):
    """The real SQLite store with an 'unavailable' switch, to test the 503 path."""

    failing = False

    def write(self, events: Sequence[Event]) -> WriteResult:
        if self.failing:
            raise StoreError("store offline (test switch)")
        return super().write(events)


def make_config(tmp_path: Path, **ingest: Any) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "ingest": {"port": 0, "agent_cache_seconds": 0, **ingest},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
        }
    )


@dataclass
class Stack:
    config: CollectorConfig
    store: SwitchableStore
    pipeline: Pipeline
    server: IngestServer
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.server.ca.cert_path

    def token(self, *, uses: int = 1, ttl: float = 3600, site: str | None = None) -> str:
        token, _ = self.server.registry.create_token(site=site, uses=uses, ttl_seconds=ttl)
        return token

    def agent(self, tmp_path: Path, hostname: str = "pc-01", site: str | None = None) -> Agent:
        agent = Agent(self, tmp_path / hostname, hostname)
        agent.enroll(self.token(site=site))
        return agent


def start_stack(tmp_path: Path, **ingest: Any) -> Stack:
    config = make_config(tmp_path, **ingest)
    store = SwitchableStore(tmp_path / "events.db")
    pipeline = build_pipeline(config, store, None, None)
    server = IngestServer(config, pipeline)
    port = server.start()
    return Stack(config, store, pipeline, server, port)


def make_csr(common_name: str = "ignored") -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


class Agent:
    """What an agent does on the wire: enrol once, then ship NDJSON with its client certificate."""

    def __init__(self, stack: Stack, folder: Path, hostname: str) -> None:
        self.stack = stack
        self.folder = folder
        self.hostname = hostname
        self.agent_id = ""
        folder.mkdir(parents=True, exist_ok=True)

    def enroll(self, token: str) -> httpx.Response:
        key, csr = make_csr(self.hostname)
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.stack.ca_file))) as client:
            resp = client.post(
                f"{self.stack.url}/v1/enroll",
                json={
                    "token": token,
                    "hostname": self.hostname,
                    "csr": csr,
                    "os": "linux",
                    "agent_version": "t",
                },
            )
        if resp.status_code == 200:
            body = resp.json()
            self.agent_id = body["agent_id"]
            (self.folder / "agent.crt").write_text(body["certificate"])
            (self.folder / "agent.key").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return resp

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.stack.ca_file))
        ctx.load_cert_chain(self.folder / "agent.crt", self.folder / "agent.key")
        return ctx

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context(), timeout=30)

    def ship(self, events: Sequence[Event | str], *, compress: bool = False) -> httpx.Response:
        with self.client() as client:
            return post_events(client, self.stack.url, events, compress=compress)


def ndjson(events: Sequence[Event | str]) -> bytes:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events).encode()


def post_events(
    client: httpx.Client, url: str, events: Sequence[Event | str], *, compress: bool = False
) -> httpx.Response:
    body = ndjson(events)
    headers = {"Content-Type": "application/x-ndjson"}
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return client.post(f"{url}/v1/events", content=body, headers=headers)


def sample_events(n: int, prefix: str = "e") -> list[Event]:
    out = []
    for i in range(n):
        ev = new_event(dataset="system.auth", event_id=f"{prefix}-{i}")
        ev["host"] = {"name": "pc-01", "ip": ["10.1.2.3"]}
        ev["source"] = {"ip": "203.0.113.7"}
        ev["user"] = {"name": f"user{i % 7}"}
        out.append(ev)
    return out

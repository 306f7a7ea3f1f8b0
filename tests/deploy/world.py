"""A real single-server deployment in a temporary folder, and a fingerprint of everything in it.

Everything is produced by the components themselves (soc_api services, collector.store,
collector.ingest.ca / registry), so a backup that only copied "some files" would not pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.alerts import make_alert
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from collector.config import CollectorConfig
from collector.ingest.ca import CertificateAuthority
from collector.ingest.registry import Registry
from collector.store.base import Query
from collector.store.sqlite import SqliteEventStore
from soc_api.config import ApiConfig, ensure_session_secret
from soc_api.db.migrate import upgrade
from soc_api.db.models import AlertRow, AuditEntry, User
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.services import audit
from soc_api.services.alert_sink import DatabaseAlertSink
from soc_api.services.auth import create_user
from soc_common.config import load_config
from soc_common.ecs import new_event, put, stable_event_id

N_EVENTS = 300


@dataclass
class World:
    root: Path
    collector_cfg: Path
    api_cfg: Path
    agent_cfg: Path
    db_url: str

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    def collector(self) -> CollectorConfig:
        return load_config(CollectorConfig, self.collector_cfg, role="collector")


def build_world(root: Path, db_url: str | None = None) -> World:
    """Write the configs and populate every store; ``db_url`` None means SQLite under var/api."""
    etc, var = root / "etc", root / "var"
    etc.mkdir(parents=True)
    url = db_url or f"sqlite:///{var / 'api' / 'soc.db'}"
    (etc / "collector.toml").write_text(
        f'data_dir = "{var / "collector"}"\n[alerts]\ndatabase_url = "{url}"\n', encoding="utf-8"
    )
    (etc / "api.toml").write_text(f'data_dir = "{var / "api"}"\n[database]\nurl = "{url}"\n', encoding="utf-8")
    (etc / "agent.toml").write_text(
        f'data_dir = "{var / "agent"}"\ncollector_url = "https://collector.example:8443"\n', encoding="utf-8"
    )
    world = World(root, etc / "collector.toml", etc / "api.toml", etc / "agent.toml", url)
    _populate_soc_database(url)
    api = load_config(ApiConfig, world.api_cfg, role="api")
    ensure_session_secret(api)
    _populate_collector(world.collector())
    creds = var / "agent" / "credentials"
    creds.mkdir(parents=True)
    ca = CertificateAuthority(world.collector().ca_dir)
    (creds / "ca.crt").write_text(ca.pem, encoding="utf-8")
    (creds / "agent.json").write_text('{"agent_id": "a-1"}', encoding="utf-8")
    (creds / "agent.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n")
    (creds / "agent.key").chmod(0o600)
    return world


def _populate_soc_database(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions.begin() as s:
        begin_write(s)
        create_user(s, username="admin", password="mật-khẩu-đủ-dài-2025", role="admin")
        create_user(s, username="officer_hn", password="mật-khẩu-đủ-dài-2025", role="officer", site_scope="hn")
    DatabaseAlertSink(sessions).emit([make_alert(i) for i in range(12)])
    with sessions.begin() as s:
        begin_write(s)
        audit.append(s, actor="admin", action="alert.close", object_type="alert", object_id="x", after={"a": 1})
    engine.dispose()


def _populate_collector(cfg: CollectorConfig) -> None:
    ca = CertificateAuthority(cfg.ca_dir)
    ca.ensure_server_cert(cfg.tls_dir, ["collector.example", "127.0.0.1"])
    registry = Registry(cfg.registry_path)
    registry.create_token(site="hn", uses=3, ttl_seconds=3600, note="bàn giao")
    registry.close()
    store = SqliteEventStore(cfg.store.sqlite_path)
    events = []
    for i in range(N_EVENTS):
        ev = new_event(dataset="system.auth", event_id=stable_event_id("world", i))
        put(ev, "source.ip", f"10.0.{i % 7}.{i % 250}")
        put(ev, "message", f"Đăng nhập thất bại #{i}")
        events.append(ev)
    result = store.write(events)
    assert result.stored == N_EVENTS
    store.close()


def soc_rows(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    with sessions() as s:
        rows = {
            "users": [(u.username, u.role, u.password_hash) for u in s.scalars(select(User).order_by(User.id))],
            "alerts": [(a.id, a.status, a.host_name) for a in s.scalars(select(AlertRow).order_by(AlertRow.id))],
            "audit": [(e.seq, e.hash) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))],
        }
        rows["audit_ok"] = audit.verify(s).ok
    engine.dispose()
    return rows


def events(cfg: CollectorConfig) -> list[Any]:
    store = SqliteEventStore(cfg.store.sqlite_path)
    page = store.search(Query(), size=N_EVENTS + 10)
    store.close()
    return sorted(page.events, key=lambda e: e["event"]["id"])


def key_files(world: World) -> dict[str, str]:
    """SHA-256 of every non-database file of the deployment (keys, certificates, configs, secrets)."""
    out: dict[str, str] = {}
    for path in sorted(world.root.rglob("*")):
        if path.is_file() and not path.name.endswith((".db", ".db-wal", ".db-shm", ".tar.gz")):
            if "backup" in path.parts or "pre-restore" in str(path):
                continue
            out[str(path.relative_to(world.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def fingerprint(world: World) -> dict[str, Any]:
    return {
        "soc": soc_rows(world.db_url),
        "events": events(world.collector()),
        "files": key_files(world),
    }

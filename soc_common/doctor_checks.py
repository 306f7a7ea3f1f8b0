"""The checks ``soc doctor`` runs per role. Each role's packages are imported only when it is checked."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from soc_common.doctor import Check, Finding, Status, check_directory, check_tls_endpoint
from soc_common.doctor_certs import check_agent_certificates, check_certificate_file
from soc_common.doctor_ops import check_clock, check_collector_metrics, check_elasticsearch_health


def _load_agent(path: Path | None) -> Any:
    from agent.config import load_agent_config

    return load_agent_config(path)


def _load_collector(path: Path | None) -> Any:
    from collector.config import CollectorConfig
    from soc_common.config import load_config

    return load_config(CollectorConfig, path, role="collector")


def _load_api(path: Path | None) -> Any:
    from soc_api.config import load_api_config

    return load_api_config(path)


def agent_data(cfg: Any) -> Iterator[Finding]:
    yield from check_directory("agent", Path(cfg.data_dir))


def agent_collector(cfg: Any) -> Iterator[Finding]:
    """Enrolled? Then the collector must answer TLS with a certificate our pinned CA vouches for."""
    from agent.enroll import Credentials

    creds = Credentials.load(Path(cfg.data_dir))
    if creds is None:
        yield Finding("agent", "enrolment", "warn", "not enrolled: run 'soc agent enroll'")
    else:
        yield Finding("agent", "enrolment", "ok", f"agent id {creds.agent_id}")
    url = cfg.collector_url or (creds.collector_url if creds else "")
    if not url:
        yield Finding("agent", "collector", "warn", "no collector_url configured")
        return
    yield from check_tls_endpoint("agent", url, creds.ca_path if creds else None)
    if creds is not None:
        yield from _own_certificate(creds.cert_path)
    yield from check_clock("agent", url, creds.ca_path if creds else None)


def _own_certificate(cert_path: Path) -> Iterator[Finding]:
    """The agent's client certificate: once it expires the collector refuses every batch."""
    import datetime as dt

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        yield Finding("agent", "client certificate", "fail", f"unreadable: {exc}")
        return
    days = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
    status: Status = "ok" if days > 30 else ("warn" if days > 0 else "fail")
    yield Finding("agent", "client certificate", status, f"expires in {days} days: re-enrol before then")


def collector_data(cfg: Any) -> Iterator[Finding]:
    yield from check_directory("collector", Path(cfg.data_dir))


def collector_store(cfg: Any) -> Iterator[Finding]:
    """The event store answers and reports its size."""
    from collector.store.factory import open_store

    try:
        store = open_store(cfg.store, writer=False)
    except Exception as exc:
        yield Finding("collector", f"event store ({cfg.store.kind})", "fail", f"{type(exc).__name__}: {exc}")
        return
    try:
        health = store.health()
    finally:
        store.close()
    status: Status = "ok" if health.get("reachable", True) else "fail"
    yield Finding(
        "collector",
        f"event store ({cfg.store.kind})",
        status,
        ", ".join(f"{k}={v}" for k, v in health.items()),
    )


def collector_ports(cfg: Any) -> Iterator[Finding]:
    """The listening ports are free (or already held by a running collector)."""
    ports = [("ingest", cfg.ingest.host, cfg.ingest.port, socket.SOCK_STREAM)]
    if cfg.syslog.enabled and cfg.syslog.udp_port:
        ports.append(("syslog/udp", cfg.syslog.host, cfg.syslog.udp_port, socket.SOCK_DGRAM))
    if cfg.netflow.enabled:
        ports.append(("netflow/udp", cfg.netflow.host, cfg.netflow.port, socket.SOCK_DGRAM))
    for name, host, port, kind in ports:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
                yield Finding("collector", f"port {name} {host}:{port}", "ok", "free")
            except OSError as exc:
                yield Finding(
                    "collector",
                    f"port {name} {host}:{port}",
                    "warn",
                    f"in use ({exc.strerror}): collector running?",
                )


def collector_running(cfg: Any) -> Iterator[Finding]:
    """A running collector's view: its agents' clock skew and its queue depths (from /metrics)."""
    if not cfg.metrics.enabled:
        yield Finding("collector", "collector metrics", "skip", "metrics disabled")
        return
    host = cfg.metrics.host if cfg.metrics.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    yield from check_collector_metrics(
        "collector", f"http://{host}:{cfg.metrics.port}/metrics", cfg.metrics.bearer_token
    )


def collector_certificates(cfg: Any) -> Iterator[Finding]:
    """The CA every agent trusts, the ingest server certificate, and every agent's client certificate."""
    yield from check_certificate_file("collector", "collector CA", Path(cfg.ca_dir) / "ca.crt")
    server = Path(cfg.ingest.server_cert) if cfg.ingest.server_cert else Path(cfg.tls_dir) / "server.crt"
    yield from check_certificate_file("collector", "ingest server certificate", server)
    yield from check_agent_certificates("collector", Path(cfg.registry_path))


def collector_elasticsearch(cfg: Any) -> Iterator[Finding]:
    """Cluster health when the store is Elasticsearch: yellow or red means lost redundancy or data."""
    store = cfg.store
    if store.kind != "elasticsearch":
        yield Finding("collector", "elasticsearch cluster", "skip", f"store is {store.kind}")
        return
    yield from check_elasticsearch_health(
        "collector",
        list(store.hosts),
        ca_file=store.ca_certs,
        username=store.username,
        password=store.password.get_secret_value() if store.password else None,
        api_key=store.api_key.get_secret_value() if store.api_key else None,
    )


def collector_rules(cfg: Any) -> Iterator[Finding]:
    """The Sigma rules load; rules that cannot be evaluated are reported, not fatal."""
    if not cfg.detection.enabled:
        yield Finding("collector", "detection", "skip", "disabled")
        return
    from collector.detection.loader import load_engine

    engine = load_engine([Path(p) for p in cfg.detection.rule_paths])
    report = getattr(engine, "report", None)
    loaded = getattr(report, "loaded", None)
    skipped = getattr(report, "skipped", [])
    detail = f"{loaded if loaded is not None else '?'} rules loaded, {len(skipped)} skipped"
    yield Finding("collector", "detection rules", "ok" if loaded else "warn", detail)


def _database(role: str, url: str) -> Iterator[Finding]:
    """The SOC database answers and its schema is at the latest migration."""
    from alembic.script import ScriptDirectory

    from soc_api.db.migrate import alembic_config, current_revision

    try:
        current = current_revision(url)
    except Exception as exc:
        yield Finding(role, "database", "fail", f"cannot connect: {type(exc).__name__}: {exc}")
        return
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current == head:
        yield Finding(role, "database", "ok", f"schema at {current}")
    else:
        yield Finding(role, "database", "fail", f"schema at {current}, latest is {head}: run 'soc api migrate'")


def collector_database(cfg: Any) -> Iterator[Finding]:
    url = cfg.alerts_database_url
    if not url:
        yield Finding("collector", "database", "skip", "alerts go to a JSON-lines file")
        return
    yield from _database("collector", url)


def api_data(cfg: Any) -> Iterator[Finding]:
    yield from check_directory("api", Path(cfg.data_dir))


def api_database(cfg: Any) -> Iterator[Finding]:
    yield from _database("api", cfg.database.url)


ROLES: dict[str, tuple[Callable[[Path | None], Any], list[Check]]] = {
    "agent": (_load_agent, [agent_data, agent_collector]),
    "collector": (
        _load_collector,
        [
            collector_data,
            collector_store,
            collector_elasticsearch,
            collector_ports,
            collector_running,
            collector_certificates,
            collector_rules,
            collector_database,
        ],
    ),
    "api": (_load_api, [api_data, api_database]),
}

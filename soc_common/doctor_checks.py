"""The checks ``soc doctor`` runs per role. Each role's packages are imported only when it is checked."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from soc_common.doctor import Check, Finding, Status, check_directory, check_tls_endpoint


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


def collector_data(cfg: Any) -> Iterator[Finding]:
    yield from check_directory("collector", Path(cfg.data_dir))


def collector_store(cfg: Any) -> Iterator[Finding]:
    """The event store answers and reports its size."""
    from collector.store.factory import open_store

    try:
        store = open_store(cfg.store)
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
        [collector_data, collector_store, collector_ports, collector_rules, collector_database],
    ),
    "api": (_load_api, [api_data, api_database]),
}

"""What a backup holds, worked out from the roles' configuration files.

The configuration is loaded exactly as the service loads it (file + ``SOC_<ROLE>_*`` environment),
so the backup follows the paths the running service really uses. Each :class:`Part` is one thing
restored as a unit: a file, a directory tree, a SQLite database or a PostgreSQL database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from soc_common.config import load_config

PartKind = Literal["file", "tree", "sqlite", "postgresql"]


@dataclass
class Part:
    name: str  # unique, also the folder under parts/ in the archive
    kind: PartKind
    target: str  # absolute path; for PostgreSQL the URL without password
    source: Path | None = None  # where the backup reads from (files, trees, SQLite)
    url: str | None = None  # PostgreSQL: the full URL, never written to the manifest
    soc_database: bool = False  # migrated to the schema head after restore
    config_role: str | None = None  # the role whose configuration names this database
    optional: bool = False  # absent on disk -> skipped instead of an error


@dataclass
class Plan:
    parts: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    event_store: str = "none"

    def add(self, part: Part) -> None:
        """Add ``part`` unless the same target is already covered (two roles may share a database)."""
        if any(p.target == part.target for p in self.parts):
            return
        names = {p.name for p in self.parts}
        base, n = part.name, 2
        while part.name in names:
            part.name, n = f"{base}-{n}", n + 1
        self.parts.append(part)


def _abs(path: Path) -> Path:
    return path.expanduser().absolute()


def _file(plan: Plan, name: str, path: Path | None, *, optional: bool = False) -> None:
    if path is not None:
        p = _abs(path)
        plan.add(Part(name, "file", str(p), source=p, optional=optional))


def _database(plan: Plan, name: str, url: str, role: str) -> None:
    """A SOC database URL: SQLite files are snapshotted, PostgreSQL is dumped."""
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if not database or database == ":memory:":
            return
        path = _abs(Path(database))
        plan.add(Part(name, "sqlite", str(path), source=path, soc_database=True, config_role=role))
        return
    from soc_common.ops.snapshot import public_url

    plan.add(Part(name, "postgresql", public_url(url), url=url, soc_database=True, config_role=role))


def add_collector(plan: Plan, config_path: Path) -> None:
    from collector.config import CollectorConfig

    cfg = load_config(CollectorConfig, config_path, role="collector")
    _file(plan, "config-collector", config_path)
    state = _abs(cfg.state_dir)
    plan.add(Part("collector-state", "tree", str(state), source=state, optional=True))
    if not _abs(cfg.policy_dir).is_relative_to(state):
        policy = _abs(cfg.policy_dir)
        plan.add(Part("collector-policy", "tree", str(policy), source=policy, optional=True))
    for name, path in (
        ("ingest-tls-cert", cfg.ingest.server_cert),
        ("ingest-tls-key", cfg.ingest.server_key),
        ("syslog-tls-cert", cfg.syslog.tls_cert),
        ("syslog-tls-key", cfg.syslog.tls_key),
        ("store-ca", cfg.store.ca_certs),
        ("systems-file", cfg.enrich.systems_file),
    ):
        _file(plan, name, path)
    for index, intel in enumerate(cfg.enrich.intel_files):
        _file(plan, f"intel-{index}", intel)
    if cfg.store.kind == "sqlite":
        path = _abs(cfg.store.sqlite_path)
        plan.add(Part("events", "sqlite", str(path), source=path, optional=True))
        plan.event_store = "sqlite"
    else:
        plan.event_store = cfg.store.kind
        plan.notes.append(
            "the event store is Elasticsearch: its data is NOT in this archive; "
            "back it up with Elasticsearch snapshots (deploy/README.md, 'Back up Elasticsearch')"
        )
    _file(plan, "alerts-jsonl", cfg.alerts_jsonl_path, optional=True)
    if cfg.alerts_database_url:
        _database(plan, "soc-database", cfg.alerts_database_url, "collector")


def add_api(plan: Plan, config_path: Path) -> None:
    from soc_api.config import SECRET_FILE_NAME, load_api_config

    cfg = load_api_config(config_path)
    _file(plan, "config-api", config_path)
    _database(plan, "soc-database", cfg.database.url, "api")
    _file(plan, "api-session-secret", _abs(cfg.data_dir) / SECRET_FILE_NAME, optional=True)
    _file(plan, "api-tls-cert", cfg.listen.tls_cert)
    _file(plan, "api-tls-key", cfg.listen.tls_key)


def add_agent(plan: Plan, config_path: Path) -> None:
    from agent.config import AgentConfig

    cfg = load_config(AgentConfig, config_path, role="agent")
    _file(plan, "config-agent", config_path)
    data = _abs(cfg.data_dir)
    plan.add(Part("agent-credentials", "tree", str(data / "credentials"), source=data / "credentials", optional=True))
    _file(plan, "agent-policy", data / "policy.json", optional=True)
    plan.notes.append("the agent's spool (events not yet acknowledged) is not backed up; agents re-read sources")


def build_plan(collector: Path | None, api: Path | None, agent: Path | None) -> Plan:
    plan = Plan()
    if collector is not None:
        add_collector(plan, collector)
    if api is not None:
        add_api(plan, api)
    if agent is not None:
        add_agent(plan, agent)
    return plan

"""The collector's configuration: one pydantic model, one section per component.

Loaded with ``soc_common.config.load_config(CollectorConfig, path, role="collector")`` so values come
from defaults, then ``collector.toml``, then ``SOC_COLLECTOR_*`` variables. Defaults are the safe
ones (listen on loopback only); production values are documented next to each field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from collector.anomaly.settings import AnomalySettings
from collector.detection.scheduled.settings import ScheduledSettings
from collector.pipeline.cef_forward import CefForwardSettings
from collector.store.settings import StoreSettings
from soc_common.config import Duration, Section, data_dir_default, parse_duration

MiB = 1024 * 1024

__all__ = ["CollectorConfig", "Duration", "parse_duration"]


class IngestSettings(Section):
    """The HTTPS endpoint agents enrol with and ship to (docs/agent-protocol.md)."""

    enabled: bool = True
    # Loopback by default so a fresh install exposes nothing; production: host = "0.0.0.0".
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    # Names/IPs agents use to reach the collector; they go into the auto-issued server certificate.
    server_names: list[str] = Field(default_factory=list)
    # Leave empty to have the collector CA issue data_dir/collector/tls/server.{crt,key}.
    server_cert: Path | None = None
    server_key: Path | None = None
    max_request_bytes: int = Field(default=10 * MiB, gt=0)  # compressed body
    max_decompressed_bytes: int = Field(default=50 * MiB, gt=0)
    rate_limit_eps: float = Field(default=5000.0, gt=0)  # sustained events/s per agent
    rate_limit_burst: int = Field(default=50000, gt=0)  # events an agent may send at once
    # Central agent policy files (default.toml, site-<code>.toml, agent-<id>.toml);
    # empty = data_dir/collector/policy.
    policy_dir: Path | None = None
    # How long an agent's registry record (revocation) is cached by the server.
    agent_cache_seconds: Duration = 5.0
    request_timeout: Duration = 30.0
    client_cert_days: int = Field(default=730, gt=0)


class DetectionSettings(Section):
    enabled: bool = True
    rule_paths: list[Path] = Field(default_factory=lambda: [Path("rules")])
    statuses: list[str] = Field(default_factory=lambda: ["stable", "test"])  # empty = every status
    levels: list[str] = Field(default_factory=list)  # e.g. ["medium", "high", "critical"]; empty = all
    queue_batches: int = Field(default=256, gt=0)  # batches waiting for detection before ingest slows down
    queue_events: int = Field(default=50_000, gt=0)  # and events (about 1.2 KiB each in memory)


class AlertSettings(Section):
    # The SOC database; "" writes alerts to data_dir/alerts.jsonl only. None = sqlite under data_dir.
    database_url: str | None = None
    jsonl_path: Path | None = None


class ZoneSettings(Section):
    name: str
    cidrs: list[str]


class SiteSettings(Section):
    code: str
    cidrs: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)  # host name glob patterns, e.g. "hn-*"


class SystemSettings(Section):
    """An information system and the assets (host names / IPs / CIDRs) that belong to it."""

    id: str
    hosts: list[str] = Field(default_factory=list)
    cidrs: list[str] = Field(default_factory=list)


class EnrichSettings(Section):
    default_site: str | None = None  # site for hosts that match no site rule
    zones: list[ZoneSettings] = Field(default_factory=list)
    sites: list[SiteSettings] = Field(default_factory=list)
    systems: list[SystemSettings] = Field(default_factory=list)
    systems_file: Path | None = None  # CSV: system_id,host_or_ip_or_cidr
    # How often the SOC database's registry of hosts and agents is copied for soc.system_id
    # (collector.registry_sync); 0 = the configured systems only.
    registry_refresh: Duration = Field(default=60.0, ge=0)
    intel_files: list[Path] = Field(default_factory=list)
    max_field_chars: int = Field(default=32768, ge=256)  # longer string fields are truncated and tagged
    # @timestamp this far ahead of event.ingested: tagged clock_skew; this far behind: late_arrival
    clock_skew_tolerance: Duration = 300.0
    late_arrival_after: Duration = 86400.0


class SyslogSettings(Section):
    enabled: bool = False
    host: str = "127.0.0.1"  # production: "0.0.0.0"
    udp_port: int | None = Field(default=5514, ge=0, le=65535)  # None disables the listener
    tcp_port: int | None = Field(default=5514, ge=0, le=65535)
    tls_port: int | None = Field(default=6514, ge=0, le=65535)
    # Empty: issued from the collector CA like the ingest certificate.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # TLS client certificates: "none", "optional" (verified when sent) or "required" (RFC 5425 mutual auth)
    tls_client_auth: Literal["none", "optional", "required"] = "optional"
    tls_client_ca: Path | None = None  # trust anchor for client certificates; empty = the collector CA
    max_connections: int = Field(default=1024, gt=0)
    idle_timeout: Duration = 900.0  # an idle TCP/TLS sender is disconnected after this
    max_queued_events: int | None = Field(default=None, gt=0)  # back-pressure bound; None = 200 batches
    max_message_bytes: int = Field(default=64 * 1024, gt=0)
    timezone: str = "Asia/Ho_Chi_Minh"  # RFC 3164 timestamps carry no zone
    batch_size: int = Field(default=500, gt=0)
    flush_interval: Duration = 1.0


class NetflowSettings(Section):
    enabled: bool = False
    host: str = "127.0.0.1"  # production: "0.0.0.0"
    port: int = Field(default=2055, ge=0, le=65535)
    receive_buffer_bytes: int = Field(default=4 * MiB, gt=0)
    template_timeout: Duration = 1800.0
    max_queued_events: int | None = Field(default=None, gt=0)  # bound while the store is slow
    batch_size: int = Field(default=1000, gt=0)
    flush_interval: Duration = 1.0


class MetricsSettings(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9109, ge=0, le=65535)
    bearer_token: str | None = None  # when set, /metrics requires "Authorization: Bearer <token>"


class RetentionSettings(Section):
    enabled: bool = True
    interval: Duration = 3600.0  # how often; the age limit is store.retention_days


class CollectorConfig(Section):
    data_dir: Path = Field(default_factory=data_dir_default)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    syslog: SyslogSettings = Field(default_factory=SyslogSettings)
    netflow: NetflowSettings = Field(default_factory=NetflowSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    scheduled: ScheduledSettings = Field(default_factory=ScheduledSettings)  # Sigma over Elasticsearch
    forward_cef: CefForwardSettings = Field(default_factory=CefForwardSettings)  # alerts to another SIEM
    anomaly: AnomalySettings = Field(default_factory=AnomalySettings)  # baselines and behaviour detectors
    # Ingest processes. 1: everything in one process. N > 1: N worker processes receive, parse, enrich
    # and store (the listening ports shared with SO_REUSEPORT) while this process runs detection,
    # retention, anomaly detection and /metrics. 0: one worker per CPU core.
    workers: int = Field(default=1, ge=0, le=64)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="before")
    @classmethod
    def _tolerate_none(cls, data: Any) -> Any:
        return {} if data is None else data

    # Paths derived from data_dir, in one place so the CLI and the runtime agree.
    @model_validator(mode="after")
    def _store_under_data_dir(self) -> CollectorConfig:
        # The store's own default is relative to SOC_DATA_DIR; follow this config's data_dir instead.
        if self.store.kind == "sqlite" and "sqlite_path" not in self.store.model_fields_set:
            self.store.sqlite_path = self.data_dir / "events.db"
        return self

    @property
    def worker_count(self) -> int:
        """``workers`` with 0 resolved to the number of CPU cores."""
        return self.workers or os.cpu_count() or 1

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "collector"

    @property
    def ca_dir(self) -> Path:
        return self.state_dir / "ca"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def registry_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def policy_dir(self) -> Path:
        return self.ingest.policy_dir or self.state_dir / "policy"

    @property
    def alerts_database_url(self) -> str:
        """The SOC database URL, or "" when alerts go to the JSON-lines file only."""
        if self.alerts.database_url is None:
            return f"sqlite:///{self.data_dir / 'soc.db'}"
        return self.alerts.database_url

    @property
    def systems_snapshot_path(self) -> Path | None:
        """The copy of the registry's asset links, or None when there is no database to copy from."""
        if not self.alerts_database_url or self.enrich.registry_refresh <= 0:
            return None
        return self.state_dir / "systems.json"

    @property
    def alerts_jsonl_path(self) -> Path:
        return self.alerts.jsonl_path or self.data_dir / "alerts.jsonl"

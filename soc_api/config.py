"""Configuration of the SOC API role (``soc api``), loaded with :func:`soc_common.config.load_config`."""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from collector.store.settings import StoreSettings
from soc_api.agents.settings import AgentsSettings
from soc_api.assessments.settings import ComplianceSettings
from soc_api.handover.settings import HandoverSettings
from soc_api.incidents.settings import IncidentsSettings
from soc_api.kpi.settings import KpiSettings
from soc_api.notifications.settings import NotificationsSettings
from soc_api.reminders.settings import RemindersSettings
from soc_api.reports.settings import ReportsSettings
from soc_api.systems.settings import SystemsSettings
from soc_common.config import ConfigError, Section, data_dir_default, load_config

SECRET_FILE_NAME = "api_session_secret"


def _default_db_url() -> str:
    return f"sqlite:///{data_dir_default() / 'soc.db'}"


class DatabaseSection(Section):
    url: str = Field(default_factory=_default_db_url)
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=200)


class ListenSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Only for a deployment behind a TLS-terminating proxy on another address.
    insecure_plaintext: bool = False

    @model_validator(mode="after")
    def _tls_pair(self) -> ListenSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class SecuritySection(Section):
    session_secret: SecretStr | None = None  # generated and persisted in the data dir when unset
    session_lifetime_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    token_lifetime_minutes: int = Field(default=15, ge=1, le=24 * 60)
    lockout_threshold: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    cookie_secure: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(minutes=self.session_lifetime_minutes)

    @property
    def token_lifetime(self) -> timedelta:
        return timedelta(minutes=self.token_lifetime_minutes)

    @property
    def lockout_duration(self) -> timedelta:
        return timedelta(minutes=self.lockout_minutes)


class AlertsSection(Section):
    dedup_window_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    page_size_max: int = Field(default=500, ge=10, le=5000)
    bulk_max: int = Field(default=500, ge=1, le=10_000)


class ApiConfig(Section):
    data_dir: Path = Field(default_factory=data_dir_default)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    listen: ListenSection = Field(default_factory=ListenSection)
    security: SecuritySection = Field(default_factory=SecuritySection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    language: Literal["vi", "en"] = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    # The event store the alert detail reads raw events from: the same ``[store]`` section as the
    # collector's (collector.store.settings.StoreSettings). Unset = alert detail without raw events.
    store: StoreSettings | None = None
    systems: SystemsSettings = Field(default_factory=SystemsSettings)  # registry, dossiers, profiles
    incidents: IncidentsSettings = Field(default_factory=IncidentsSettings)  # profiles, evidence, reports
    notifications: NotificationsSettings = Field(default_factory=NotificationsSettings)  # SMTP, webhooks
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)  # assessment/drill obligations
    kpi: KpiSettings = Field(default_factory=KpiSettings)  # yearly targets, what counts as a PC
    reports: ReportsSettings = Field(default_factory=ReportsSettings)  # annual/quarterly report details
    reminders: RemindersSettings = Field(default_factory=RemindersSettings)  # deadline reminders
    handover: HandoverSettings = Field(default_factory=HandoverSettings)  # central monitoring system
    agents: AgentsSettings = Field(default_factory=AgentsSettings)  # collector admin API (agents, tokens)
    # The collector's anomaly state DB (detector overrides); None = <data_dir>/collector/anomaly.db
    anomaly_state: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def ensure_session_secret(config: ApiConfig) -> SecretStr:
    """Return the configured secret, or the one persisted in the data dir (created on first run).

    Persisting it keeps sessions and encrypted TOTP secrets valid across restarts without asking
    the operator to invent a secret.
    """
    if config.security.session_secret is not None:
        value = config.security.session_secret.get_secret_value()
        if len(value) < 32:
            raise ConfigError("security.session_secret: must be at least 32 characters")
        return config.security.session_secret
    path = config.data_dir / SECRET_FILE_NAME
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 32:
            return SecretStr(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return SecretStr(value)


def load_api_config(path: Path | str | None) -> ApiConfig:
    return load_config(ApiConfig, path, role="api")

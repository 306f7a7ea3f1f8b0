"""The ``[agents]`` configuration section: how the SOC API reaches the collector's admin API."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from soc_common.config import Duration, Section


class AgentsSettings(Section):
    # The collector's ingest address, e.g. "https://collector.tu.local:8443"; empty = feature off.
    collector_url: str = ""
    # The collector CA (``data_dir/collector/ca/ca.crt`` there, or ``ca.crt`` from admin-cert): pinned,
    # the system trust store is not used.
    ca_file: Path | None = None
    # Admin credential: a key from ``soc collector admin-key`` and/or a certificate pair from
    # ``soc collector admin-cert --out DIR`` (admin.crt, admin.key).
    admin_key: SecretStr | None = None
    admin_cert: Path | None = None
    admin_cert_key: Path | None = None
    timeout: Duration = 10.0
    # An agent not heard from for longer than this is "silent".
    silent_after: Duration = 3600.0
    # How far back to look for an agent's latest inventory snapshot.
    inventory_lookback_days: int = Field(default=7, ge=1, le=365)
    # Signatures older than this many days count as out of date.
    signature_max_age_days: float = Field(default=7.0, gt=0)

    @model_validator(mode="after")
    def _pairs(self) -> AgentsSettings:
        if (self.admin_cert is None) != (self.admin_cert_key is None):
            raise ValueError("admin_cert and admin_cert_key must be set together")
        if self.collector_url and not self.collector_url.startswith("https://"):
            raise ValueError("collector_url must be https://")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.collector_url) and (self.admin_key is not None or self.admin_cert is not None)

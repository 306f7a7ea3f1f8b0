"""``[handover]`` configuration of the SOC API role."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl, model_validator

from soc_common.config import Duration, Section


class HandoverSettings(Section):
    enabled: bool = False
    site: str = Field(default="site", pattern=r"^[A-Za-z0-9._-]{1,64}$")  # this sending site's code
    site_name: str = ""  # shown as the STIX identity name
    key_dir: Path = Path("data/handover-keys")
    endpoint: HttpUrl | None = None  # the centre's receiver, e.g. https://centre.example/handover/v1
    client_cert: Path | None = None  # mutual TLS: our certificate chain (PEM)
    client_key: Path | None = None
    ca_file: Path | None = None  # CA that signed the receiver's server certificate
    receiver_keys: Path | None = None  # the receiver's public key set (JSON) for checking receipts
    receiver_encryption_key: str | None = None  # X25519 public key, base64url: encrypt when set
    timeout: Duration = 30.0
    max_attempts: int = Field(default=20, ge=1, le=1000)
    backoff_base: Duration = 10.0
    backoff_max: Duration = 3600.0
    push_interval: Duration = 60.0
    urgent_severities: list[str] = Field(default_factory=lambda: ["serious"])  # incident classes pushed at once
    daily_summary_cron: str = "5 0 * * *"  # 00:05 every day (local time of the scheduler)
    quarterly_kpi_cron: str = "30 0 1 1,4,7,10 *"  # first day of each quarter
    taxii_collection_title: str = "SOC hand-over"

    @model_validator(mode="after")
    def _mtls_complete(self) -> HandoverSettings:
        if self.endpoint is not None:
            if self.endpoint.scheme != "https":
                raise ValueError("endpoint must be https")
            if self.client_cert is None or self.client_key is None:
                raise ValueError("endpoint needs client_cert and client_key (mutual TLS)")
            if self.receiver_keys is None:
                raise ValueError("endpoint needs receiver_keys to verify receipts")
        return self

"""The ``[notifications]`` configuration section (``ApiConfig.notifications``).

SMTP settings extend the reminders' :class:`SmtpSettings` (one shape for every mail sender);
passwords and webhook secrets are ``SecretStr`` and never appear in logs or reprs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from soc_api.reminders.settings import SmtpSettings
from soc_common.config import Section

MessageKind = Literal["alert", "assignment", "deadline", "overdue"]
ALL_KINDS: list[MessageKind] = ["alert", "assignment", "deadline", "overdue"]


class EmailSettings(SmtpSettings):
    ca_file: Path | None = None  # trust anchors for the server certificate (default: system store)


class WebhookSettings(Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(max_length=500)
    secret: SecretStr  # HMAC-SHA256 key of the X-SOC-Signature header
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    kinds: list[MessageKind] = Field(default_factory=lambda: list(ALL_KINDS))

    @field_validator("url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        if not value.lower().startswith("https://"):
            raise ValueError("webhook URLs must use https://")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("webhook secret must be at least 32 characters")
        return value


class NotificationsSettings(Section):
    enabled: bool = True
    email: EmailSettings = Field(default_factory=EmailSettings)  # email.host unset: no e-mail
    webhooks: list[WebhookSettings] = Field(default_factory=list, max_length=20)
    alert_min_severity: Literal["low", "medium", "high", "critical"] = "high"
    deadline_warning_hours: float = Field(default=6.0, ge=0, le=24 * 7)
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    poll_seconds: int = Field(default=30, ge=1, le=3600)
    batch_size: int = Field(default=100, ge=1, le=1000)
    lease_seconds: int = Field(default=300, ge=30, le=3600)  # a claimed message is retried after this
    base_url: str | None = Field(default=None, max_length=300)  # links in messages, e.g. https://soc.local

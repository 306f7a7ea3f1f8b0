"""The ``[reminders]`` configuration section (to be added to ``ApiConfig`` as ``reminders``).

Offsets are working days before the date (0 = on the day); a missed run still sends the tightest
offset already crossed, never every offset at once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from soc_common.config import Section


class SmtpSettings(Section):
    host: str | None = None  # unset: in-app notifications only
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "soc@localhost"
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)


class RemindersSettings(Section):
    enabled: bool = True
    run_hour: int = Field(default=7, ge=0, le=23)  # local (Asia/Ho_Chi_Minh) hour of the daily run
    drill_marking_minutes: int = Field(default=10, ge=1, le=1440)  # re-mark alerts of running drills
    dossier_offsets: list[int] = Field(default_factory=lambda: [3, 1, 0])
    assessment_offsets: list[int] = Field(default_factory=lambda: [20, 5, 0])
    drill_offsets: list[int] = Field(default_factory=lambda: [10, 3, 0])
    action_offsets: list[int] = Field(default_factory=lambda: [5, 0])
    report_offsets: list[int] = Field(default_factory=lambda: [10, 3, 1, 0])
    email_retry_days: int = Field(default=7, ge=0, le=90)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

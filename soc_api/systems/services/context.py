"""What a systems service call needs: who acts, from where, under which settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soc_api.services.principal import Principal
from soc_api.systems.calendar.holidays import WorkingCalendar, calendar_from
from soc_api.systems.profiles import Profile, load_profile
from soc_api.systems.settings import SystemsSettings


class RuleError(Exception):
    """A request the rules refuse (wrong state, missing part, wrong authority...): HTTP 409/403."""

    def __init__(self, message: str, *, status: int = 409, kind: str = "rule-violation") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Ctx:
    principal: Principal
    source_ip: str | None
    settings: SystemsSettings
    data_dir: Path

    @property
    def actor(self) -> str:
        return self.principal.name

    def profile(self, profile_id: str | None = None) -> Profile:
        return load_profile(profile_id or self.settings.profile, self.settings.profiles_dir)

    def calendar(self) -> WorkingCalendar:
        return calendar_from(self.settings.calendar_file)

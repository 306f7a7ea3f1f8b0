"""The alert record shared by detection (which raises alerts) and the SOC API (which stores them).

It lives here, not in either package, so that the collector can hand alerts to any sink (the SOC
database, a JSON-lines file, a webhook) without importing the API, and the API can accept alerts
without importing pySigma.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from soc_common.ecs import stable_event_id

Severity = Literal["informational", "low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class Alert(BaseModel):
    """One alert: what fired, on which events, about which host/user/office."""

    id: str
    source: Literal["sigma", "correlation", "anomaly"] = "sigma"
    rule_id: str
    rule_title: str
    rule_level: Severity = "medium"
    rule_tags: list[str] = Field(default_factory=list)
    tactics: list[str] = Field(default_factory=list)  # ATT&CK tactic names from attack.<tactic> tags
    techniques: list[str] = Field(default_factory=list)  # T1110, T1059.001 ...
    severity: Severity = "medium"
    timestamp: datetime  # time of the (first) matching event, UTC
    detected_at: datetime  # when detection raised it, UTC
    group_key: str = ""  # deduplication key inside a window (rule + grouping fields)
    event_ids: list[str] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)  # copies of key fields, bounded
    host_name: str | None = None
    user_name: str | None = None
    source_ip: str | None = None
    destination_ip: str | None = None
    site: str | None = None
    zone: str | None = None
    system_id: str | None = None
    explanation: dict[str, Any] = Field(default_factory=dict)  # correlation/anomaly details
    drill: bool = False  # raised during a declared drill; excluded from real statistics

    @staticmethod
    def make_id(rule_id: str, group_key: str, first_event_id: str) -> str:
        """Deterministic id, so the same detection replayed twice is the same alert."""
        return stable_event_id("alert", rule_id, group_key, first_event_id)


class AlertSink(Protocol):
    """Where raised alerts go (the SOC database, a JSON-lines file, a test list)."""

    def emit(self, alerts: Sequence[Alert]) -> None: ...

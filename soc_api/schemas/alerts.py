"""Alert bodies. Input models bound every string and list (input limits live here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from soc_api.db.models import AlertComment, AlertRow

CloseReason = Literal["true_positive", "false_positive", "benign", "duplicate"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max(0.0, (end - start).total_seconds())


class AlertOut(BaseModel):
    id: str
    rule_id: str
    rule_title: str
    severity: str
    status: str
    timestamp: datetime
    detected_at: datetime
    last_seen: datetime
    duplicate_count: int
    host_name: str | None
    user_name: str | None
    source_ip: str | None
    destination_ip: str | None
    site: str | None
    zone: str | None
    system_id: str | None
    tactics: list[str]
    techniques: list[str]
    assignee: str | None
    close_reason: str | None
    acknowledged_at: datetime | None
    closed_at: datetime | None
    drill: bool
    version: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def time_to_acknowledge_s(self) -> float | None:
        """Seconds from detection to acknowledgement: the queue's responsiveness, per alert."""
        return _seconds(self.detected_at, self.acknowledged_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def time_to_close_s(self) -> float | None:
        """Seconds from detection to closure."""
        return _seconds(self.detected_at, self.closed_at)

    @classmethod
    def of(cls, row: AlertRow) -> AlertOut:
        return cls(
            id=row.id,
            rule_id=row.rule_id,
            rule_title=row.rule_title,
            severity=row.severity,
            status=row.status,
            timestamp=row.timestamp,
            detected_at=row.detected_at,
            last_seen=row.last_seen,
            duplicate_count=row.duplicate_count,
            host_name=row.host_name,
            user_name=row.user_name,
            source_ip=row.source_ip,
            destination_ip=row.destination_ip,
            site=row.site,
            zone=row.zone,
            system_id=row.system_id,
            tactics=list(row.tactics or []),
            techniques=list(row.techniques or []),
            assignee=row.assignee.username if row.assignee else None,
            close_reason=row.close_reason,
            acknowledged_at=row.acknowledged_at,
            closed_at=row.closed_at,
            drill=row.drill,
            version=row.version,
        )


class CommentOut(BaseModel):
    id: int
    author: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, c: AlertComment) -> CommentOut:
        return cls(id=c.id, author=c.author, body=c.body, created_at=c.created_at)


class AlertDetail(AlertOut):
    source: str
    rule_level: str
    rule_tags: list[str]
    group_key: str
    event_ids: list[str]
    events: list[dict[str, Any]]
    explanation: dict[str, Any]
    close_note: str | None
    raw_events: list[dict[str, Any]] | None  # None: no event store configured or reachable
    related: list[AlertOut]
    comments: list[CommentOut]


class AlertList(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class AssignIn(_In):
    assignee: str | None = Field(default=None, max_length=64)


class CloseIn(_In):
    reason: CloseReason
    note: str | None = Field(default=None, max_length=4000)


class CommentIn(_In):
    body: str = Field(min_length=1, max_length=4000)


class BulkIn(_In):
    ids: list[str] = Field(min_length=1, max_length=500)
    action: Literal["acknowledge", "assign", "close"]
    assignee: str | None = Field(default=None, max_length=64)
    reason: CloseReason | None = None
    note: str | None = Field(default=None, max_length=4000)


class BulkItem(BaseModel):
    id: str
    ok: bool
    status: int
    detail: str = ""


class BulkOut(BaseModel):
    results: list[BulkItem]

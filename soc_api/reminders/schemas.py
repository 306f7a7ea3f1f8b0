"""Bodies of the notifications endpoints."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class NotificationOut(BaseModel):
    id: int
    kind: str
    site: str | None
    title: str
    body: str
    due_date: date | None
    object_type: str
    object_id: str
    created_at: datetime
    read_at: datetime | None
    emailed: bool

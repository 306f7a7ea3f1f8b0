"""The triage queue's filters, read from and written back to the URL (shareable, bookmarkable).

Dates are typed in the user's zone (``YYYY-MM-DD``) and become UTC bounds; unknown values are
dropped rather than refused, so an old or hand-edited link still opens a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams

from soc_api.db.models import ALERT_STATUSES, SEVERITIES
from soc_api.services import alerts as svc
from soc_api.web.labels import LABELS

SORTS = tuple(LABELS["sort"])
TEXT_FIELDS = ("rule_id", "host", "user", "site", "technique", "assignee")
MAX_VALUE = 255


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass
class TriageQuery:
    status: list[str] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)
    text: dict[str, str] = field(default_factory=dict)  # one value per text field
    start: date | None = None
    end: date | None = None  # inclusive (a whole local day)
    sort: str = "-timestamp"
    cursor: str | None = None

    @classmethod
    def parse(cls, params: QueryParams) -> TriageQuery:
        text = {}
        for name in TEXT_FIELDS:
            value = (params.get(name) or "").strip()
            if value and len(value) <= MAX_VALUE:
                text[name] = value
        sort = params.get("sort") or "-timestamp"
        cursor = params.get("cursor")
        return cls(
            status=[s for s in params.getlist("status") if s in ALERT_STATUSES],
            severity=[s for s in params.getlist("severity") if s in SEVERITIES],
            text=text,
            start=_day(params.get("start")),
            end=_day(params.get("end")),
            sort=sort if sort in SORTS else "-timestamp",
            cursor=cursor if cursor and len(cursor) <= 512 else None,
        )

    def to_filter(self, tz: ZoneInfo) -> svc.AlertFilter:
        def bound(d: date | None) -> datetime | None:
            return datetime.combine(d, time.min, tzinfo=tz) if d else None

        t = self.text
        return svc.AlertFilter(
            status=self.status,
            severity=self.severity,
            rule_id=[t["rule_id"]] if "rule_id" in t else [],
            technique=[t["technique"]] if "technique" in t else [],
            host=[t["host"]] if "host" in t else [],
            user=[t["user"]] if "user" in t else [],
            site=[t["site"]] if "site" in t else [],
            assignee=t.get("assignee"),
            start=bound(self.start),
            end=bound(self.end + timedelta(days=1)) if self.end else None,
        )

    @property
    def sort_key(self) -> svc.SortKey:
        return cast(svc.SortKey, self.sort)

    def items(self, *, with_cursor: bool = False) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = [("status", s) for s in self.status]
        out += [("severity", s) for s in self.severity]
        out += list(self.text.items())
        if self.start:
            out.append(("start", self.start.isoformat()))
        if self.end:
            out.append(("end", self.end.isoformat()))
        if self.sort != "-timestamp":
            out.append(("sort", self.sort))
        if with_cursor and self.cursor:
            out.append(("cursor", self.cursor))
        return out

    def query_string(self, **extra: str) -> str:
        return urlencode(self.items() + list(extra.items()))

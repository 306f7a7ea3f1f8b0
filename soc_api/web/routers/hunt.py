"""Hunting over the raw events: a ``field:value`` query and a time range, the matching events
newest first (cursor paging) and a histogram of matches over the period."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from collector.store.base import Aggregation, StoreError, Term
from collector.store.base import Query as StoreQuery
from soc_api.deps import StateDep
from soc_api.services.principal import ALERTS_TRIAGE
from soc_api.web import nav, userprefs
from soc_api.web.charts import stacked_bars
from soc_api.web.guard import PagePrincipal, allow
from soc_api.web.hunt_query import QueryError, parse
from soc_api.web.i18n import N_
from soc_api.web.render import render
from soc_common.ecs import get, utc_now

log = logging.getLogger(__name__)
router = APIRouter()
nav.register(nav.NavEntry("hunt", N_("Hunting"), "/hunt", order=40, allowed=nav.can(ALERTS_TRIAGE)))
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
BUCKETS = 48
COLUMNS = ("@timestamp", "host.name", "event.dataset", "event.action", "user.name", "source.ip", "destination.ip")


def _local_input(value: str, tz: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=tz) if value else None
    except ValueError:
        return None


@router.get("/hunt")
def hunt(
    request: Request,
    state: StateDep,
    principal: PagePrincipal,
    q: Annotated[str, Query(max_length=2000)] = "",
    range_: Annotated[str, Query(alias="range", max_length=4)] = "24h",
    start: Annotated[str, Query(max_length=19)] = "",
    end: Annotated[str, Query(max_length=19)] = "",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> HTMLResponse:
    allow(principal, nav.can(ALERTS_TRIAGE))
    now = utc_now()
    tz = userprefs.zone(request, state)
    lo, hi = _local_input(start, tz), _local_input(end, tz)
    if lo is None or hi is None or lo >= hi:
        range_ = range_ if range_ in RANGES else "24h"
        lo, hi = now - RANGES[range_], now
        start = end = ""
    context: dict[str, Any] = {
        "q": q, "range": range_, "ranges": list(RANGES), "start": start, "end": end, "columns": COLUMNS,
        "error": None, "detail": "", "events": [], "total": None, "chart": None, "next_cursor": None,
        "store_configured": state.store is not None, "get": get,
    }  # fmt: skip
    if state.store is not None and q.strip():
        try:
            parsed = parse(q)
        except QueryError as exc:
            context.update(error=N_("The query could not be read."), detail=str(exc))
            return render(request, state, "hunt.html", context, principal=principal, active="hunt")
        filters = parsed.filters
        if principal.sites is not None:
            filters += (Term("soc.site", sorted(principal.sites)),)
        query = StoreQuery(filters, lo, hi)
        interval = max(int((hi - lo).total_seconds() // BUCKETS), 60)
        try:
            page = state.store.search(query, size=50, cursor=cursor)
            buckets = state.store.aggregate(query, Aggregation("histogram", interval_seconds=interval))
        except (StoreError, ValueError) as exc:
            log.warning("hunt query failed", exc_info=True)
            context.update(error=N_("The event store refused the query."), detail=str(exc)[:300])
            return render(request, state, "hunt.html", context, principal=principal, active="hunt")
        columns = [(b.key.astimezone(tz).strftime("%d/%m %H:%M"), {"hits": b.count}) for b in buckets]
        context.update(
            events=page.events, total=page.total, next_cursor=page.cursor,
            chart=stacked_bars(columns, ["hits"], css_prefix="", label_every=max(len(columns) // 6, 1)),
        )  # fmt: skip
    return render(request, state, "hunt.html", context, principal=principal, active="hunt")

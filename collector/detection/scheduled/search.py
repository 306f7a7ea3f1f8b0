"""Window queries and ``search_after`` paging against the Elasticsearch event store.

Windows are half-open on ``event.ingested``: ``start < ingested <= end``, both at millisecond
precision (what an Elasticsearch ``date`` keeps), so consecutive windows tile the time line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.store.elastic import ElasticEventStore
from soc_common.ecs import Event, iso

INGESTED = "event.ingested"
DSL = dict[str, Any]


def floor_ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)


def ingest_window(start: datetime | None, end: datetime) -> DSL:
    bounds: dict[str, str] = {"lte": iso(end)}
    if start is not None:
        bounds["gt"] = iso(start)
    return {"range": {INGESTED: bounds}}


def filtered(*clauses: DSL) -> DSL:
    return {"bool": {"filter": list(clauses)}}


@dataclass
class Hits:
    events: list[Event] = field(default_factory=list)
    total: int = 0  # every match of the query (exact: track_total_hits)

    @property
    def overflow(self) -> int:
        return max(self.total - len(self.events), 0)


def fetch_all(
    store: ElasticEventStore,
    query: DSL,
    sort: Sequence[DSL],
    *,
    page_size: int,
    cap: int,
) -> Hits:
    """Every hit up to ``cap``, page by page with ``search_after``; the total counts the rest."""
    out = Hits()
    after: list[Any] | None = None
    first = True
    while len(out.events) < cap:
        size = min(page_size, cap - len(out.events))
        body: dict[str, Any] = {"query": query, "sort": list(sort), "size": size, "track_total_hits": first}
        if after is not None:
            body["search_after"] = after
        response = store._call("search", lambda b=body: store.client.search(index=store.layout.target, **b))  # type: ignore[misc]
        hits = response["hits"]["hits"]
        if first:
            out.total = int(response["hits"]["total"]["value"])
            first = False
        out.events.extend(hit["_source"] for hit in hits)
        if len(hits) < size:
            break
        after = hits[-1]["sort"]
    out.total = max(out.total, len(out.events))
    return out


def aggregate(store: ElasticEventStore, query: DSL, aggs: DSL) -> DSL:
    response = store._call(
        "aggregate",
        lambda: store.client.search(index=store.layout.target, query=query, aggs=aggs, size=0),
    )
    result: DSL = response.body.get("aggregations", {})
    return result

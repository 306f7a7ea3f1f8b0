"""event_count / value_count correlations over Elasticsearch, with the streaming engine's semantics.

pySigma's Lucene backend does not convert correlations, so a run works in two steps:

1. Candidates (one aggregation): over the base rules' matches whose ``@timestamp`` falls within a
   timespan of this window's new matches, ``terms``/``multi_terms`` on the group-by fields with a
   ``filter`` sub-aggregation counting the group's new matches (ingested in the window), its event
   time range, and for value_count a ``cardinality`` of the counted field. Groups without new
   matches, or (for ``gte``/``gt``) whose whole context cannot reach the threshold, are dropped.
2. Exact evaluation: each candidate group's context events are fetched in event-time order and fed
   to the streaming engine's own :class:`CorrelationState` (sliding window, reset after firing).
   A firing is reported only if it contains at least one new event; older firings were reported
   by the run that saw their last event, with the same deterministic alert id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.detection.alerts import build_alert, event_id_of
from collector.detection.correlation import CorrelationState
from collector.detection.eventview import EventView
from collector.detection.scheduled.convert import ScheduledCorrelation, lucene_dsl
from collector.detection.scheduled.search import DSL, INGESTED, aggregate, fetch_all, filtered, ingest_window
from collector.store.elastic import ElasticEventStore
from soc_common.alert import Alert
from soc_common.ecs import get, iso, parse_ts

_TIME_BOUNDS: DSL = {"first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}}
_TIME_SORT = ({"@timestamp": {"order": "asc"}}, {"event.id": {"order": "asc"}})


@dataclass
class CorrelationOutcome:
    alerts: list[Alert] = field(default_factory=list)
    hits: int = 0  # new base-rule matches in the window
    candidates: int = 0
    overflow: int = 0  # groups beyond max_groups + context events beyond max_events_per_group


def _base_query(corr: ScheduledCorrelation) -> DSL:
    clauses = [lucene_dsl(b.lucene) for b in corr.bases]
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}


def _group_agg(corr: ScheduledCorrelation, window: DSL, size: int) -> DSL:
    spec = corr.spec
    subs: DSL = {"new": {"filter": window, "aggs": _TIME_BOUNDS}}
    if spec.kind == "value_count" and spec.value_field:
        subs["distinct"] = {"cardinality": {"field": spec.value_field, "precision_threshold": 3000}}
    if len(spec.group_by) == 1:
        grouping: DSL = {"terms": {"field": spec.group_by[0], "size": size}}
    else:
        grouping = {"multi_terms": {"terms": [{"field": f} for f in spec.group_by], "size": size}}
    return {"groups": {**grouping, "aggs": subs}}


def _may_fire(corr: ScheduledCorrelation, bucket: DSL) -> bool:
    spec = corr.spec
    if spec.kind == "event_count":
        observed = int(bucket["doc_count"])
    else:
        observed = int(bucket.get("distinct", {}).get("value") or 0)
    if spec.op == "gte":
        return observed >= spec.threshold
    if spec.op == "gt":
        return observed > spec.threshold
    return True  # lt/lte/eq/neq: the context total says nothing about a sub-window


def _epoch_ms(value: Any) -> datetime:
    return parse_ts(float(value))


def _event_ts(event: DSL) -> float:
    when = get(event, "@timestamp")
    try:
        return parse_ts(when).timestamp() if when is not None else 0.0
    except (ValueError, TypeError, OverflowError):
        return 0.0


def _is_new(event: DSL, start: datetime | None, end: datetime) -> bool:
    raw = get(event, INGESTED)
    if raw is None:
        return False
    try:
        ingested = parse_ts(raw)
    except (ValueError, TypeError, OverflowError):
        return False
    return (start is None or ingested > start) and ingested <= end


def _group_terms(corr: ScheduledCorrelation, key: Any) -> list[DSL]:
    values = key if isinstance(key, list) else [key]
    return [{"term": {name: value}} for name, value in zip(corr.spec.group_by, values, strict=True)]


def run_correlation(
    store: ElasticEventStore,
    corr: ScheduledCorrelation,
    start: datetime | None,
    end: datetime,
    *,
    max_groups: int,
    max_events_per_group: int,
    page_size: int,
) -> CorrelationOutcome:
    """Evaluate one correlation for the window ``(start, end]`` on event.ingested."""
    if corr.spec.aliases:
        raise ValueError("correlation aliases are not supported on the scheduled path")
    if not corr.spec.group_by:
        raise ValueError("correlations without group-by are not supported on the scheduled path")
    out = CorrelationOutcome()
    base = _base_query(corr)
    window = ingest_window(start, end)
    span = timedelta(seconds=corr.spec.timespan_seconds)
    bounds = aggregate(
        store,
        filtered(base, window),
        {**_TIME_BOUNDS, "n": {"value_count": {"field": "event.id"}}},
    )
    out.hits = int(bounds.get("n", {}).get("value") or 0)
    if not out.hits or bounds.get("first", {}).get("value") is None:
        return out
    lo, hi = _epoch_ms(bounds["first"]["value"]) - span, _epoch_ms(bounds["last"]["value"]) + span
    context = filtered(
        base,
        {"range": {"@timestamp": {"gte": iso(lo), "lte": iso(hi)}}},
        {"range": {INGESTED: {"lte": iso(end)}}},
    )
    groups = aggregate(store, context, _group_agg(corr, window, max_groups)).get("groups", {})
    out.overflow += int(groups.get("sum_other_doc_count") or 0)
    for bucket in groups.get("buckets", []):
        if not int(bucket["new"]["doc_count"]) or not _may_fire(corr, bucket):
            continue
        out.candidates += 1
        first = _epoch_ms(bucket["new"]["first"]["value"]) - span
        last = _epoch_ms(bucket["new"]["last"]["value"]) + span
        group_query = filtered(
            context,
            *_group_terms(corr, bucket["key"]),
            {"range": {"@timestamp": {"gte": iso(first), "lte": iso(last)}}},
        )
        out.alerts.extend(_evaluate_group(store, corr, group_query, start, end, max_events_per_group, page_size, out))
    return out


def _evaluate_group(
    store: ElasticEventStore,
    corr: ScheduledCorrelation,
    group_query: DSL,
    start: datetime | None,
    end: datetime,
    cap: int,
    page_size: int,
    out: CorrelationOutcome,
) -> list[Alert]:
    """Replay one group's context through the streaming engine's correlation state."""
    per_rule: list[tuple[float, str, str, DSL]] = []  # (event time, event id, rule id, event)
    for base in corr.bases:
        query = filtered(group_query, lucene_dsl(base.lucene))
        hits = fetch_all(store, query, _TIME_SORT, page_size=page_size, cap=cap)
        out.overflow += hits.overflow
        per_rule.extend((_event_ts(e), event_id_of(e), base.meta.id, e) for e in hits.events)
    per_rule.sort(key=lambda item: (item[0], item[1]))
    state = CorrelationState(corr.spec, max_groups=1 + len(per_rule), max_entries=max(cap, 1))
    alerts: list[Alert] = []
    new_ids = {eid for _, eid, _, e in per_rule if _is_new(e, start, end)}
    for ts, eid, rule_id, event in per_rule:
        firing = state.feed(rule_id, ts, EventView(event).raw, eid, event)
        if firing is None or not new_ids.intersection(firing.event_ids):
            continue
        alerts.append(
            build_alert(
                corr.meta,
                firing.events,
                source="correlation",
                group_key=firing.group_key,
                explanation=firing.explanation,
                event_ids=firing.event_ids,
            )
        )
    return alerts

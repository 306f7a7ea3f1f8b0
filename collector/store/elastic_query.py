"""Translation of the store's filter language and aggregations into the Elasticsearch query DSL.

Every filter runs in filter context (no scoring, cacheable). Terms on array fields match any
element natively; ``Not`` is ``must_not``, which, like the SQLite store, also matches documents
that lack the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.store.base import Aggregation, Bucket, Exists, Filter, Not, Query, Range, Term
from soc_common.ecs import iso, parse_ts

DSL = dict[str, Any]
DISTINCT_PRECISION = 3000  # cardinality is exact below this many distinct values
MAX_BUCKETS = 65_536  # Elasticsearch's default search.max_buckets: one composite page at most


def _value(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def compile_filter(flt: Filter) -> DSL:
    if isinstance(flt, Term):
        raw = flt.value if isinstance(flt.value, list | tuple | set | frozenset) else [flt.value]
        values = [_value(v) for v in raw]
        if not values:
            return {"match_none": {}}
        if len(values) == 1:
            return {"term": {flt.field: values[0]}}
        return {"terms": {flt.field: values}}
    if isinstance(flt, Range):
        bounds: dict[str, Any] = {}
        if flt.gte is not None:
            bounds["gte"] = _value(flt.gte)
        if flt.lt is not None:
            bounds["lt"] = _value(flt.lt)
        if not bounds:
            return {"exists": {"field": flt.field}}
        return {"range": {flt.field: bounds}}
    if isinstance(flt, Exists):
        return {"exists": {"field": flt.field}}
    if isinstance(flt, Not):
        return {"bool": {"must_not": [compile_filter(flt.filter)]}}
    raise TypeError(f"unknown filter {flt!r}")


def compile_query(query: Query) -> DSL:
    filters = [compile_filter(f) for f in query.filters]
    if query.start is not None or query.end is not None:
        filters.append(compile_filter(Range(query.time_field, query.start, query.end)))
    if not filters:
        return {"match_all": {}}
    return {"bool": {"filter": filters}}


def _metric_dsl(kind: str, field: str) -> DSL:
    if kind == "distinct":
        return {"cardinality": {"field": field, "precision_threshold": DISTINCT_PRECISION}}
    if kind == "sum":
        return {"sum": {"field": field}}
    raise ValueError(f"unknown metric {kind!r}")


def _composite_source(agg: Aggregation, field: str) -> DSL:
    if field in ("@timestamp", "event.ingested"):  # time fields are bucketed, as the contract says
        if int(agg.interval_seconds) <= 0:
            raise ValueError("interval_seconds must be positive")
        return {"date_histogram": {"field": field, "fixed_interval": f"{int(agg.interval_seconds)}s"}}
    return {"terms": {"field": field}}


def compile_aggregation(query: Query, agg: Aggregation) -> DSL:
    """The ``aggs`` body; the result is read back by :func:`read_buckets`."""
    if agg.kind in ("distinct", "sum"):
        if not agg.field:
            raise ValueError(f"{agg.kind} aggregation needs a field")
        return {"result": _metric_dsl(agg.kind, agg.field)}
    body: DSL
    if agg.kind == "terms":
        if not agg.field:
            raise ValueError("terms aggregation needs a field")
        body = {
            "terms": {
                "field": agg.field,
                "size": max(int(agg.size), 1),
                "order": [{"_count": "desc"}, {"_key": "asc"}],
            }
        }
    elif agg.kind == "composite":
        if not agg.fields:
            raise ValueError("composite aggregation needs fields")
        sources = [{f"k{i}": _composite_source(agg, f)} for i, f in enumerate(agg.fields)]
        body = {"composite": {"sources": sources, "size": min(max(int(agg.size), 1), MAX_BUCKETS)}}
    elif agg.kind == "histogram":
        if int(agg.interval_seconds) <= 0:
            raise ValueError("histogram interval_seconds must be positive")
        body = {
            "date_histogram": {
                "field": query.time_field,
                "fixed_interval": f"{int(agg.interval_seconds)}s",
                "min_doc_count": 1,
            }
        }
    else:
        raise ValueError(f"unknown aggregation kind {agg.kind!r}")
    if agg.metric is not None:
        if not agg.metric_field:
            raise ValueError("a per-bucket metric needs metric_field")
        body["aggs"] = {"metric": _metric_dsl(agg.metric, agg.metric_field)}
    return {"result": body}


def _key(raw: Any, bucket: DSL, is_time: bool) -> Any:
    if is_time:
        if isinstance(raw, int | float):
            return datetime.fromtimestamp(raw / 1000.0, UTC)
        return parse_ts(raw)
    if "key_as_string" in bucket and isinstance(raw, int) and bucket["key_as_string"] in ("true", "false"):
        return bucket["key_as_string"] == "true"
    return raw


def read_buckets(agg: Aggregation, response: DSL, total: int, time_fields: frozenset[str]) -> list[Bucket]:
    result = response.get("aggregations", {}).get("result", {})
    if agg.kind in ("distinct", "sum"):
        return [Bucket(None, total, float(result.get("value") or 0.0))]
    is_time = agg.kind == "histogram" or agg.field in time_fields
    if agg.kind in ("terms", "composite") and limit_is_zero(agg):
        return []
    buckets = []
    for raw in result.get("buckets", []):
        value = None
        if agg.metric is not None:
            value = float(raw.get("metric", {}).get("value") or 0.0)
        if agg.kind == "composite":
            parts = raw["key"]
            key: Any = tuple(_key(parts[f"k{i}"], {}, f in time_fields) for i, f in enumerate(agg.fields))
        else:
            key = _key(raw["key"], raw, is_time)
        buckets.append(Bucket(key, int(raw["doc_count"]), value))
    return buckets


def limit_is_zero(agg: Aggregation) -> bool:
    return int(agg.size) <= 0

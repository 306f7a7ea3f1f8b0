"""Translation of the store's filter language and aggregations into SQLite SQL.

Field addressing, in order of speed:
- ``@timestamp`` / ``event.ingested``: integer epoch-microsecond columns (``ts`` / ``ingested``);
- ``event.id``: the unique ``eid`` column;
- the hot fields in :data:`PROMOTED_COLUMNS`: their own indexed columns. A document whose value for
  such a field is not a scalar (an array, an object) keeps the column NULL and is flagged
  ``irregular = 1``, and those rare rows are matched through the JSON document instead, so the
  columns never lie;
- every other field: the JSON document via ``json_each``, which yields a scalar once and each
  element of an array, so a term on ``tags`` / ``event.category`` / ``related.ip`` matches any
  element, exactly like Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.store.base import Aggregation, Exists, Filter, Not, Query, Range, Term
from collector.store.documents import to_epoch_us
from soc_common.ecs import iso

TIME_COLUMNS: dict[str, str] = {"@timestamp": "ts", "event.ingested": "ingested"}
ID_COLUMN = "eid"
PROMOTED_COLUMNS: dict[str, str] = {
    "event.dataset": "dataset",
    "event.code": "code",
    "event.action": "action",
    "event.outcome": "outcome",
    "host.name": "host_name",
    "source.ip": "source_ip",
    "destination.ip": "destination_ip",
    "user.name": "user_name",
    "soc.site": "site",
    "soc.agent_id": "agent_id",
}

Params = list[Any]


@dataclass(frozen=True)
class Sql:
    text: str
    params: tuple[Any, ...] = ()


def json_path(field: str) -> str:
    """``source.ip`` -> ``$."source"."ip"`` (quoted so ``@timestamp``-style keys work)."""
    parts = (part.replace("\\", "\\\\").replace('"', '\\"') for part in field.split("."))
    return "$." + ".".join(f'"{part}"' for part in parts)


def _values(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def _bind(field: str, value: Any) -> Any:
    """Convert a query value to what the column or JSON holds."""
    if field in TIME_COLUMNS:
        return to_epoch_us(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class _Predicate:
    """A condition on a single value ``{v}``, applied to a column or to JSON elements."""

    def __init__(self, template: str, params: Iterable[Any]) -> None:
        self.template = template
        self.params = list(params)

    def on(self, expr: str) -> str:
        return self.template.replace("{v}", expr)


def _field_predicate(field: str, pred: _Predicate) -> tuple[str, Params]:
    if field in TIME_COLUMNS:
        return pred.on(f"e.{TIME_COLUMNS[field]}"), list(pred.params)
    if field == "event.id":
        return pred.on(f"e.{ID_COLUMN}"), list(pred.params)
    path = json_path(field)
    in_json = f"EXISTS (SELECT 1 FROM json_each(e.doc, ?) AS j WHERE {pred.on('j.value')})"
    column = PROMOTED_COLUMNS.get(field)
    if column is None:
        return in_json, [path, *pred.params]
    sql = f"({pred.on('e.' + column)} OR (e.irregular = 1 AND e.{column} IS NULL AND {in_json}))"
    return sql, [*pred.params, path, *pred.params]


def compile_filter(flt: Filter) -> tuple[str, Params]:
    if isinstance(flt, Term):
        values = [_bind(flt.field, v) for v in _values(flt.value)]
        if not values:
            return "0", []
        return _field_predicate(flt.field, _Predicate(f"{{v}} IN ({_placeholders(len(values))})", values))
    if isinstance(flt, Range):
        conds: list[str] = []
        params: Params = []
        if flt.gte is not None:
            conds.append("{v} >= ?")
            params.append(_bind(flt.field, flt.gte))
        if flt.lt is not None:
            conds.append("{v} < ?")
            params.append(_bind(flt.field, flt.lt))
        if not conds:
            return _field_predicate(flt.field, _Predicate("{v} IS NOT NULL", []))
        return _field_predicate(flt.field, _Predicate(" AND ".join(conds), params))
    if isinstance(flt, Exists):
        return _field_predicate(flt.field, _Predicate("{v} IS NOT NULL", []))
    if isinstance(flt, Not):
        inner, params = compile_filter(flt.filter)
        return f"NOT COALESCE(({inner}), 0)", params
    raise TypeError(f"unknown filter {flt!r}")


def query_filters(query: Query) -> list[Filter]:
    filters = list(query.filters)
    if query.start is not None or query.end is not None:
        filters.append(Range(query.time_field, query.start, query.end))
    return filters


def compile_where(query: Query) -> tuple[str, Params]:
    parts: list[str] = []
    params: Params = []
    for flt in query_filters(query):
        sql, p = compile_filter(flt)
        parts.append(sql)
        params.extend(p)
    return (" AND ".join(parts) or "1"), params


def value_source(field: str, where: str, params: Params) -> tuple[str, Params]:
    """SELECT of ``(rid, v)``: one row per document and distinct value of ``field``."""
    if field in TIME_COLUMNS or field == "event.id":
        column = TIME_COLUMNS.get(field, ID_COLUMN)
        select = f"SELECT e.rowid AS rid, e.{column} AS v FROM events AS e"
        return f"{select} WHERE {where} AND e.{column} IS NOT NULL", list(params)
    path = json_path(field)
    from_json = (
        "SELECT DISTINCT e.rowid AS rid, j.value AS v FROM events AS e, json_each(e.doc, ?) AS j "
        f"WHERE {where} AND j.value IS NOT NULL AND j.type NOT IN ('object', 'array')"
    )
    promoted = PROMOTED_COLUMNS.get(field)
    if promoted is None:
        return from_json, [path, *params]
    column = promoted
    sql = (
        f"SELECT e.rowid AS rid, e.{column} AS v FROM events AS e WHERE {where} AND e.{column} IS NOT NULL "
        f"UNION ALL {from_json} AND e.irregular = 1 AND e.{column} IS NULL"
    )
    return sql, [*params, path, *params]


def bucket_source(agg: Aggregation, query: Query, where: str, params: Params) -> tuple[str, Params]:
    if agg.kind == "histogram":
        column = TIME_COLUMNS.get(query.time_field)
        if column is None:
            raise ValueError(f"histogram needs a time field (@timestamp or event.ingested), got {query.time_field}")
        width = int(agg.interval_seconds) * 1_000_000
        if width <= 0:
            raise ValueError("histogram interval_seconds must be positive")
        # Floor towards minus infinity so buckets align to the epoch like Elasticsearch's.
        key = f"e.{column} - (((e.{column} % {width}) + {width}) % {width})"
        return (
            f"SELECT e.rowid AS rid, {key} AS v FROM events AS e WHERE {where} AND e.{column} IS NOT NULL",
            list(params),
        )
    if not agg.field:
        raise ValueError(f"{agg.kind} aggregation needs a field")
    return value_source(agg.field, where, params)


def aggregation_sql(query: Query, agg: Aggregation) -> Sql:
    """The statement for ``agg``; rows are ``(key, count, metric)``."""
    where, params = compile_where(query)
    if agg.kind in ("distinct", "sum"):
        if not agg.field:
            raise ValueError(f"{agg.kind} aggregation needs a field")
        source, src_params = value_source(agg.field, where, params)
        metric = "COUNT(DISTINCT s.v)" if agg.kind == "distinct" else "TOTAL(s.v)"
        count_sql = f"(SELECT COUNT(*) FROM events AS e WHERE {where})"
        return Sql(f"SELECT NULL, {count_sql}, {metric} FROM ({source}) AS s", (*params, *src_params))
    if agg.kind not in ("terms", "histogram"):
        raise ValueError(f"unknown aggregation kind {agg.kind!r}")
    buckets, b_params = bucket_source(agg, query, where, params)
    order = "ORDER BY 2 DESC, 1 ASC LIMIT ?" if agg.kind == "terms" else "ORDER BY 1 ASC"
    limit: tuple[Any, ...] = (max(int(agg.size), 0),) if agg.kind == "terms" else ()
    if agg.metric is None:
        return Sql(
            f"WITH b AS ({buckets}) SELECT b.v, COUNT(*), NULL FROM b GROUP BY b.v {order}",
            (*b_params, *limit),
        )
    if not agg.metric_field:
        raise ValueError("a per-bucket metric needs metric_field")
    metrics, m_params = value_source(agg.metric_field, where, params)
    metric = "COUNT(DISTINCT m.v)" if agg.metric == "distinct" else "TOTAL(m.v)"
    text = (
        f"WITH b AS ({buckets}), m AS MATERIALIZED ({metrics}) "
        f"SELECT b.v, COUNT(DISTINCT b.rid), {metric} FROM b LEFT JOIN m ON m.rid = b.rid "
        f"GROUP BY b.v {order}"
    )
    return Sql(text, (*b_params, *m_params, *limit))

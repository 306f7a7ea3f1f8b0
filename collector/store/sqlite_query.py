"""Translation of the store's filter language and aggregations into SQLite SQL.

Field addressing, in order of speed:
- ``@timestamp`` / ``event.ingested``: integer epoch-microsecond columns (``ts`` / ``ingested``);
- ``event.id``: the unique ``eid`` column;
- the hot fields in :data:`PROMOTED_COLUMNS`: their own columns. A document whose value for
  such a field is not a scalar (an array, an object) keeps the column NULL and is flagged
  ``irregular = 1``, and those rare rows are matched through the JSON document instead, so the
  columns never lie. Rows stored before a column existed (a file created by an older version;
  see :data:`Legacy`) are read through the JSON document the same way;
- every other field: the JSON document via ``json_each``, which yields a scalar once and each
  element of an array, so a term on ``tags`` / ``event.category`` / ``related.ip`` matches any
  element, exactly like Elasticsearch.

Aggregations over column-backed fields group the columns directly for the rows whose columns are
reliable (SQLite groups typed columns at about a million rows a second, parsing JSON at a small
fraction of that) and take the per-document value sets only for the few rows that are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.store.base import Aggregation, Exists, Filter, Not, Query, Range, Term
from collector.store.documents import to_epoch_us
from soc_common.ecs import iso

TIME_COLUMNS: dict[str, str] = {"@timestamp": "ts", "event.ingested": "ingested"}
ID_COLUMN = "eid"
# Grouped by top-level object (the write path reads one object per group). The anomaly detectors
# filter and group flows on the reason, byte, port and zone fields.
PROMOTED_COLUMNS: dict[str, str] = {
    "event.dataset": "dataset",
    "event.code": "code",
    "event.action": "action",
    "event.outcome": "outcome",
    "event.reason": "reason",
    "host.name": "host_name",
    "source.ip": "source_ip",
    "source.bytes": "source_bytes",
    "destination.ip": "destination_ip",
    "destination.port": "destination_port",
    "user.name": "user_name",
    "soc.site": "site",
    "soc.agent_id": "agent_id",
    "soc.zone": "zone",
    "soc.source_zone": "source_zone",
    "soc.destination_zone": "destination_zone",
}
# Columns added after the first release have no type affinity: they keep the JSON value's own type,
# so numbers compare and sum as numbers, exactly as the JSON fallback and Elasticsearch do.
TEXT_COLUMNS = frozenset(
    {"dataset", "code", "action", "outcome", "host_name", "source_ip", "destination_ip", "user_name"}
    | {"site", "agent_id"}
)
#: promoted column -> the first rowid written with that column filled. Rows below it were stored
#: before the column was added to the file (NULL there, whatever the document holds), so they are
#: read through the JSON document; a column not listed is filled on every row.
Legacy = Mapping[str, int]
NO_LEGACY: Legacy = {}

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


def _unreliable(column: str, legacy: Legacy) -> str:
    """Rows where ``column`` may be NULL although the document holds a value for its field."""
    since = int(legacy.get(column, 0))
    return f"(e.irregular = 1 OR e.rowid < {since})" if since > 0 else "e.irregular = 1"


def _field_predicate(field: str, pred: _Predicate, legacy: Legacy) -> tuple[str, Params]:
    if field in TIME_COLUMNS:
        return pred.on(f"e.{TIME_COLUMNS[field]}"), list(pred.params)
    if field == "event.id":
        return pred.on(f"e.{ID_COLUMN}"), list(pred.params)
    path = json_path(field)
    in_json = f"EXISTS (SELECT 1 FROM json_each(e.doc, ?) AS j WHERE {pred.on('j.value')})"
    column = PROMOTED_COLUMNS.get(field)
    if column is None:
        return in_json, [path, *pred.params]
    # The CASE keeps SQLite from running the JSON subquery on rows that cannot need it (without it,
    # the subquery costs five times the rest of a scan); the bare ``irregular`` test before it
    # keeps the OR answerable from indexes for selective terms.
    fallback = _unreliable(column, legacy)
    sql = f"({pred.on('e.' + column)} OR ({fallback} AND CASE WHEN e.{column} IS NULL THEN {in_json} ELSE 0 END))"
    return sql, [*pred.params, path, *pred.params]


def compile_filter(flt: Filter, legacy: Legacy = NO_LEGACY) -> tuple[str, Params]:
    if isinstance(flt, Term):
        values = [_bind(flt.field, v) for v in _values(flt.value)]
        if not values:
            return "0", []
        return _field_predicate(flt.field, _Predicate(f"{{v}} IN ({_placeholders(len(values))})", values), legacy)
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
            return _field_predicate(flt.field, _Predicate("{v} IS NOT NULL", []), legacy)
        return _field_predicate(flt.field, _Predicate(" AND ".join(conds), params), legacy)
    if isinstance(flt, Exists):
        return _field_predicate(flt.field, _Predicate("{v} IS NOT NULL", []), legacy)
    if isinstance(flt, Not):
        inner, params = compile_filter(flt.filter, legacy)
        return f"NOT COALESCE(({inner}), 0)", params
    raise TypeError(f"unknown filter {flt!r}")


def query_filters(query: Query) -> list[Filter]:
    filters = list(query.filters)
    if query.start is not None or query.end is not None:
        filters.append(Range(query.time_field, query.start, query.end))
    return filters


def compile_where(query: Query, legacy: Legacy = NO_LEGACY) -> tuple[str, Params]:
    parts: list[str] = []
    params: Params = []
    for flt in query_filters(query):
        sql, p = compile_filter(flt, legacy)
        parts.append(sql)
        params.extend(p)
    return (" AND ".join(parts) or "1"), params


def value_source(field: str, where: str, params: Params, legacy: Legacy = NO_LEGACY) -> tuple[str, Params]:
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
        f"UNION ALL {from_json} AND {_unreliable(column, legacy)} AND e.{column} IS NULL"
    )
    return sql, [*params, path, *params]


def _column(field: str) -> str | None:
    """The column expression holding ``field`` (for reliable rows), or None when only the JSON has it."""
    if field in TIME_COLUMNS:
        return f"e.{TIME_COLUMNS[field]}"
    if field == "event.id":
        return f"e.{ID_COLUMN}"
    promoted = PROMOTED_COLUMNS.get(field)
    return f"e.{promoted}" if promoted is not None else None


def _unreliable_any(fields: Sequence[str], legacy: Legacy) -> str:
    """Rows where some promoted column of ``fields`` may be NULL although the document has a value."""
    columns = [PROMOTED_COLUMNS[f] for f in fields if f in PROMOTED_COLUMNS]
    if not columns:
        return "0"
    since = max(int(legacy.get(c, 0)) for c in columns)
    return f"(e.irregular = 1 OR e.rowid < {since})" if since > 0 else "e.irregular = 1"


def _time_bucket(agg: Aggregation, field: str) -> str:
    """The bucket start (epoch µs) of time field ``field``, floored like Elasticsearch's."""
    column = TIME_COLUMNS.get(field)
    if column is None:
        raise ValueError(f"histogram needs a time field (@timestamp or event.ingested), got {field}")
    width = int(agg.interval_seconds) * 1_000_000
    if width <= 0:
        raise ValueError("histogram interval_seconds must be positive")
    return f"e.{column} - (((e.{column} % {width}) + {width}) % {width})"


@dataclass(frozen=True)
class _Key:
    """One part of a bucket key: a field's value, or (``bucket``) a time field's interval start."""

    field: str
    bucket: bool = False


def _keys(agg: Aggregation, query: Query) -> list[_Key]:
    if agg.kind == "histogram":
        return [_Key(query.time_field, True)]
    if agg.kind == "terms":
        if not agg.field:
            raise ValueError("terms aggregation needs a field")
        return [_Key(agg.field)]
    if not agg.fields:
        raise ValueError("composite aggregation needs fields")
    return [_Key(f, f in TIME_COLUMNS) for f in agg.fields]


#: ``(first, last)`` rowid holding every row of a query's time range: read the table in rowid order
#: over that span instead of through an index (see :meth:`SqliteEventStore.scan_span`).
Span = tuple[int, int]


def _rows_sql(
    agg: Aggregation, query: Query, where: str, params: Params, legacy: Legacy, span: Span | None
) -> tuple[str, Params]:
    """SELECT of ``(rid, k0.., m)``: one row per document and combination of key (and metric) values.

    A non-NULL column always holds the document's value, so rows with every key column set (and
    the metric column set, or reliably absent) come straight from the columns, with ``rid`` NULL:
    one row per document, counted without DISTINCT, and a single-key count reads only what the
    column's index holds. The rest, only where a column may hide a value (irregular or legacy
    rows), are joined from per-field value sets and keep their rowid, so a document with an array
    is still counted once per bucket.
    """
    keys = _keys(agg, query)
    fields = [k.field for k in keys if not k.bucket]
    if agg.metric is not None and agg.metric_field:
        fields.append(agg.metric_field)
    buckets = {k.field: _time_bucket(agg, k.field) for k in keys if k.bucket}
    names = [f"k{i}" for i in range(len(keys))]
    parts: list[str] = []
    out: Params = []
    fast = "0"
    if all(_column(f) is not None for f in fields):
        exprs = [buckets[k.field] if k.bucket else str(_column(k.field)) for k in keys]
        conds = [f"{x} IS NOT NULL" for k, x in zip(keys, exprs, strict=True) if not k.bucket]
        metric = "NULL"
        if agg.metric is not None and agg.metric_field:
            metric = str(_column(agg.metric_field))
            conds.append(f"({metric} IS NOT NULL OR NOT {_unreliable_any([agg.metric_field], legacy)})")
        fast = " AND ".join(conds) or "1"
        select = ", ".join(f"{x} AS {n}" for x, n in zip(exprs, names, strict=True))
        table = "events AS e"
        if span is not None:  # a sequential read of the span beats an index lookup per row
            table = f"events AS e NOT INDEXED WHERE e.rowid BETWEEN {int(span[0])} AND {int(span[1])} AND"
        else:
            table += " WHERE"
        parts.append(f"SELECT NULL AS rid, {select}, {metric} AS m FROM {table} {where} AND {fast}")
        out += params
    unreliable = _unreliable_any(fields, legacy) if fast != "0" else "1"
    if fast != "1" and unreliable != "0":
        rest = f"{where} AND {unreliable} AND NOT ({fast})"
        sources: list[str] = []
        for i, key in enumerate(keys):
            if key.bucket:
                sql, p = f"SELECT e.rowid AS rid, {buckets[key.field]} AS v FROM events AS e WHERE {rest}", list(params)
            else:
                sql, p = value_source(key.field, rest, params, legacy)
            join = "" if i == 0 else f" ON s{i}.rid = s0.rid"
            sources.append(f"{'' if i == 0 else 'JOIN '}({sql}) AS s{i}{join}")
            out += p
        metric = "NULL"
        if agg.metric is not None and agg.metric_field:
            sql, p = value_source(agg.metric_field, rest, params, legacy)
            sources.append(f"LEFT JOIN ({sql}) AS sm ON sm.rid = s0.rid")
            metric = "sm.v"
            out += p
        select = ", ".join(f"s{i}.v AS {n}" for i, n in enumerate(names))
        parts.append(f"SELECT s0.rid AS rid, {select}, {metric} AS m FROM {' '.join(sources)}")
    return " UNION ALL ".join(parts), out


def aggregation_sql(
    query: Query,
    agg: Aggregation,
    legacy: Legacy = NO_LEGACY,
    span: Span | None = None,
    drive: tuple[str, Params] | None = None,
) -> Sql:
    """The statement for ``agg``; rows are ``(key parts..., count, metric)`` (one key part but for composite).

    ``span``: read the column-backed rows by scanning that rowid span rather than through indexes.
    ``drive``: SQL of the candidate rowids (a chunk index lookup) and its parameters.
    """
    where, params = compile_where(query, legacy)
    if drive is not None:
        where, params = f"e.rowid IN ({drive[0]}) AND {where}", [*drive[1], *params]
    statement = _aggregation_sql(query, agg, legacy, span, where, params)
    if drive is None:
        return statement
    # Rows are read by rowid from the candidates only: without NOT INDEXED SQLite may walk a whole
    # index (for an order or a range) and test every row against the candidate list instead.
    text = statement.text.replace("FROM events AS e WHERE", "FROM events AS e NOT INDEXED WHERE")
    return Sql(text.replace("FROM events AS e, json_each", "FROM events AS e NOT INDEXED, json_each"), statement.params)


def _aggregation_sql(
    query: Query, agg: Aggregation, legacy: Legacy, span: Span | None, where: str, params: Params
) -> Sql:
    if agg.kind in ("distinct", "sum"):
        if not agg.field:
            raise ValueError(f"{agg.kind} aggregation needs a field")
        source, src_params = value_source(agg.field, where, params, legacy)
        metric = "COUNT(DISTINCT s.v)" if agg.kind == "distinct" else "TOTAL(s.v)"
        count_sql = f"(SELECT COUNT(*) FROM events AS e WHERE {where})"
        return Sql(f"SELECT NULL, {count_sql}, {metric} FROM ({source}) AS s", (*params, *src_params))
    if agg.kind not in ("terms", "histogram", "composite"):
        raise ValueError(f"unknown aggregation kind {agg.kind!r}")
    if agg.metric is not None and not agg.metric_field:
        raise ValueError("a per-bucket metric needs metric_field")
    rows, r_params = _rows_sql(agg, query, where, params, legacy, span)
    names = ", ".join(f"r.k{i}" for i in range(len(_keys(agg, query))))
    count = "SUM(r.rid IS NULL) + COUNT(DISTINCT r.rid)"
    metric = {None: "NULL", "distinct": "COUNT(DISTINCT r.m)", "sum": "TOTAL(r.m)"}[agg.metric]
    limit: tuple[Any, ...] = ()
    if agg.kind == "terms":
        order = "ORDER BY 2 DESC, 1 ASC LIMIT ?"
        limit = (max(int(agg.size), 0),)
    elif agg.kind == "composite":
        order = f"ORDER BY {names} LIMIT ?"
        limit = (max(int(agg.size), 0),)
    else:
        order = "ORDER BY 1 ASC"
    text = f"SELECT {names}, {count}, {metric} FROM ({rows}) AS r GROUP BY {names} {order}"
    return Sql(text, (*r_params, *limit))

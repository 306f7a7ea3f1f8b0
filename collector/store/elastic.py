"""The production event store: Elasticsearch 8.x/9.x through the official client.

Writes are ``_bulk`` ``create`` operations with ``_id = event.id``: a retried batch can never store
an event twice (the second copy is a 409 conflict, counted as a duplicate), and ``create`` is the
only operation a data stream accepts anyway. Transient failures (connection errors, timeouts, 429,
502/503/504, per-document 429 rejections) are retried with exponential back-off; when the cluster
stays unreachable the store raises :class:`StoreError`, so the collector stops acknowledging agents
and their spools keep the data. A bulk request returns after the translog is fsynced (the default
``index.translog.durability: request``), which is what makes ``write`` durable.

Search pages with ``search_after`` on (``@timestamp``, ``event.id``) newest first; the cursor holds
the last sort values and the total from the first page. Without a point-in-time, a late event
inserted behind the cursor between two pages can appear in a later page; nothing is repeated or
skipped among events present throughout.

The index layout and mapping are described in :mod:`collector.store.elastic_setup` and
:mod:`collector.store.elastic_mapping`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from collector.store.base import (
    Aggregation,
    Bucket,
    EventStore,
    Query,
    SearchPage,
    StoreError,
    WriteResult,
)
from collector.store.documents import Prepared, decode_cursor, encode_cursor, prepare
from collector.store.elastic_query import compile_aggregation, compile_query, read_buckets
from collector.store.elastic_setup import Layout, Mode, ensure_setup
from collector.store.settings import StoreSettings
from soc_common.ecs import Event, iso

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TIME_FIELDS = frozenset({"@timestamp", "event.ingested"})
_SORT = [{"@timestamp": {"order": "desc"}}, {"event.id": {"order": "desc"}}]
_MAX_BACKOFF = 30.0
_ID_CHUNK = 1000


def build_client(settings: StoreSettings) -> Elasticsearch:
    """A client from settings. Retries are done by the store (with back-off), not the transport."""
    kwargs: dict[str, Any] = {
        "hosts": settings.hosts,
        "request_timeout": settings.request_timeout_seconds,
        "max_retries": 0,
        "retry_on_timeout": False,
        "verify_certs": settings.verify_certs,
    }
    if settings.ca_certs is not None:
        kwargs["ca_certs"] = str(settings.ca_certs)
    if settings.api_key is not None:
        kwargs["api_key"] = settings.api_key.get_secret_value()
    elif settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        kwargs["basic_auth"] = (settings.username, password)
    return Elasticsearch(**kwargs)


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            reason += f" ({cause.get('type', '')}: {cause.get('reason', '')})"
        return reason[:500]
    return str(error)[:500]


class ElasticEventStore(EventStore):
    """Events in an Elasticsearch data stream (or a plain index where data streams are missing)."""

    name = "elasticsearch"

    def __init__(
        self,
        settings: StoreSettings | None = None,
        *,
        client: Elasticsearch | None = None,
        setup: bool = True,
    ) -> None:
        self.settings = settings or StoreSettings(kind="elasticsearch")
        self._owns_client = client is None
        self._client = client if client is not None else build_client(self.settings)
        self.layout = Layout(self.settings.index_prefix, self.settings.namespace)
        self.mode: Mode | None = None
        self.ilm = False
        if setup:
            self.ensure_setup()

    @property
    def client(self) -> Elasticsearch:
        return self._client

    def ensure_setup(self) -> None:
        """Install policy, templates and the write target; idempotent, safe at every start."""
        self.mode, self.ilm = self._call("setup", lambda: ensure_setup(self._client, self.settings, self.layout))
        log.info("event store %s ready (mode=%s, ilm=%s)", self.layout.target, self.mode, self.ilm)

    # -- transport with retries --------------------------------------------------------------------

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.settings.retry_backoff_seconds * (2**attempt), _MAX_BACKOFF))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with back-off on transient failures; StoreError when they persist."""
        attempt = 0
        while True:
            try:
                return fn()
            except ApiError as exc:
                if exc.meta.status not in RETRY_STATUSES:
                    raise StoreError(f"elasticsearch {what} refused: {exc.meta.status} {exc.message}") from exc
                problem: Exception = exc
            except TransportError as exc:  # connection refused, timeout, TLS failure
                problem = exc
            if attempt >= self.settings.retries:
                raise StoreError(f"elasticsearch {what} failed after {attempt + 1} attempts: {problem}") from problem
            log.warning("elasticsearch %s failed (%s); retrying", what, type(problem).__name__)
            self._sleep(attempt)
            attempt += 1

    # -- writing -----------------------------------------------------------------------------------

    def write(self, events: Sequence[Event]) -> WriteResult:
        result = WriteResult()
        ready: list[Prepared] = []
        for position, raw in enumerate(events):
            prepared = prepare(position, raw)
            if isinstance(prepared, str):
                result.errors.append((position, prepared))
            else:
                ready.append(prepared)
        chunk = self.settings.bulk_chunk_size
        for start in range(0, len(ready), chunk):
            self._write_chunk(ready[start : start + chunk], result)
        result.errors.sort()
        return result

    def _write_chunk(self, pending: list[Prepared], result: WriteResult) -> None:
        target = self.layout.target
        attempt = 0
        while pending:
            operations: list[Any] = []
            for item in pending:
                operations.append({"create": {"_index": target, "_id": item.event_id}})
                operations.append(item.doc)
            response = self._call("bulk", lambda ops=operations: self._client.bulk(operations=ops))  # type: ignore[misc]
            rejected: list[Prepared] = []
            for item, outcome in zip(pending, response["items"], strict=True):
                info = next(iter(outcome.values()))
                status = int(info.get("status", 500))
                if 200 <= status < 300:
                    result.stored += 1
                elif status == 409:
                    result.duplicates += 1
                elif status in RETRY_STATUSES:
                    rejected.append(item)
                else:
                    result.errors.append((item.position, _reason(info.get("error"))))
            if rejected and attempt >= self.settings.retries:
                result.errors.extend(
                    (item.position, "rejected by the cluster (429/5xx) after retries") for item in rejected
                )
                return
            if rejected:
                self._sleep(attempt)
                attempt += 1
            pending = rejected

    # -- reading -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._call("refresh", lambda: self._client.indices.refresh(index=self.layout.target))

    def count(self, query: Query) -> int:
        response = self._call("count", lambda: self._client.count(index=self.layout.target, query=compile_query(query)))
        return int(response["count"])

    def search(self, query: Query, *, size: int = 100, cursor: str | None = None) -> SearchPage:
        body: dict[str, Any] = {"query": compile_query(query), "sort": _SORT, "size": max(int(size), 0) + 1}
        known_total: int | None = None
        if cursor is not None:
            try:
                known_total, *after = decode_cursor(cursor)
                known_total = int(known_total)
            except (ValueError, TypeError) as exc:
                raise ValueError("malformed cursor") from exc
            body["search_after"] = after
            body["track_total_hits"] = False
        else:
            body["track_total_hits"] = True
        response = self._call("search", lambda: self._client.search(index=self.layout.target, **body))
        hits = response["hits"]["hits"]
        total = known_total if known_total is not None else int(response["hits"]["total"]["value"])
        more = len(hits) > size
        hits = hits[:size]
        next_cursor = encode_cursor([total, *hits[-1]["sort"]]) if more and hits else None
        return SearchPage([hit["_source"] for hit in hits], total, next_cursor)

    def get(self, event_ids: Sequence[str]) -> list[Event]:
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, Event] = {}
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            response = self._call(
                "get",
                lambda ids=chunk: self._client.search(  # type: ignore[misc]
                    index=self.layout.target, query={"ids": {"values": ids}}, size=len(ids)
                ),
            )
            for hit in response["hits"]["hits"]:
                found[hit["_id"]] = hit["_source"]
        return [found[eid] for eid in wanted if eid in found]

    def aggregate(self, query: Query, agg: Aggregation) -> list[Bucket]:
        aggs = compile_aggregation(query, agg)
        response = self._call(
            "aggregate",
            lambda: self._client.search(
                index=self.layout.target, query=compile_query(query), aggs=aggs, size=0, track_total_hits=True
            ),
        )
        return read_buckets(agg, response.body, int(response["hits"]["total"]["value"]), TIME_FIELDS)

    # -- retention and status ----------------------------------------------------------------------

    def delete_older_than(self, cutoff: datetime) -> int:
        response = self._call(
            "delete",
            lambda: self._client.delete_by_query(
                index=self.layout.target,
                query={"range": {"@timestamp": {"lt": iso(cutoff)}}},
                conflicts="proceed",
                refresh=True,
                wait_for_completion=True,
            ),
        )
        return int(response.get("deleted", 0))

    def apply_retention(self, now: datetime | None = None) -> int:
        """Periodic retention: ILM deletes whole backing indices; without ILM, delete by query."""
        if self.ilm:
            return 0
        now = now or datetime.now(UTC)
        return self.delete_older_than(now - timedelta(days=self.settings.retention_days))

    def health(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "store": self.name,
            "target": self.layout.target,
            "mode": self.mode,
            "ilm": self.ilm,
        }
        try:
            cluster = self._client.cluster.health()
            count = self._client.count(index=self.layout.target)
            stats = self._client.indices.stats(index=self.layout.target, metric="store")
        except (ApiError, TransportError) as exc:
            status.update(reachable=False, error=str(exc)[:300])
            return status
        size = stats.get("_all", {}).get("primaries", {}).get("store", {}).get("size_in_bytes")
        status.update(
            reachable=True,
            cluster_status=cluster.get("status"),
            count=int(count["count"]),
            size_bytes=size,
            retention_days=self.settings.retention_days,
        )
        return status

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

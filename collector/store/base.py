"""The event-store contract.

Every store (embedded SQLite, Elasticsearch) implements :class:`EventStore`; the contract test suite
in ``tests/store`` runs unchanged against each. Queries are a tiny filter language (terms, ranges,
exists, negation) that both SQL and the Elasticsearch query DSL express directly, so detectors and
the API never need to know which store they talk to.

Semantics every implementation must keep:
- ``write`` is idempotent by ``event.id``: a document whose id is already stored is counted as a
  duplicate and not stored again; a document that cannot be stored is reported in ``errors`` with
  its position and does not stop the rest of the batch. It returns only when what it reports as
  stored is durable.
- Time filters use ``@timestamp`` unless the query names another field (``event.ingested``).
- ``search`` returns newest first (``@timestamp`` then ``event.id``), with an opaque cursor for the
  next page.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from soc_common.ecs import Event


class StoreError(Exception):
    """The store cannot be reached or refused the whole operation (not a per-document error)."""


@dataclass(frozen=True)
class Term:
    """``field`` equals ``value`` (or any of ``value`` when a list). Exact, case-sensitive."""

    field: str
    value: Any


@dataclass(frozen=True)
class Range:
    """``gte <= field < lt`` (either bound optional); works on timestamps, numbers and strings."""

    field: str
    gte: Any = None
    lt: Any = None


@dataclass(frozen=True)
class Exists:
    field: str


@dataclass(frozen=True)
class Not:
    filter: Filter


Filter = Term | Range | Exists | Not


@dataclass(frozen=True)
class Query:
    """Filters ANDed together, plus an optional time range on ``time_field`` (``start <= t < end``)."""

    filters: tuple[Filter, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    time_field: str = "@timestamp"

    def and_(self, *more: Filter) -> Query:
        return Query(self.filters + more, self.start, self.end, self.time_field)


@dataclass
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (position in batch, reason)


@dataclass
class SearchPage:
    events: list[Event]
    total: int
    cursor: str | None  # pass back to get the next page; None when there is none


@dataclass(frozen=True)
class Bucket:
    key: Any  # a term value, or the bucket start (aware UTC datetime) for histograms
    count: int
    value: float | None = None  # the metric (sum / distinct count) when asked for one


@dataclass(frozen=True)
class Aggregation:
    """One aggregation request.

    kind:
      - ``terms``: top ``size`` values of ``field`` by count;
      - ``histogram``: counts per ``interval_seconds`` bucket of the query's time field;
      - ``distinct``: distinct count of ``field`` (single bucket, key None);
      - ``sum``: sum of ``field`` (single bucket, key None);
      - ``composite``: one bucket per combination of values of ``fields`` that occurs (key: a tuple
        in ``fields`` order; a document with an array contributes to each combination, one lacking
        a field to none), at most ``size`` of them (Elasticsearch answers at most 65,536), in no
        promised order: a caller that needs them all checks for ``len(result) < size``. A time
        field (``@timestamp``, ``event.ingested``) among ``fields`` is bucketed like ``histogram``
        (``interval_seconds``; key part: the bucket start).
    ``metric``/``metric_field`` add a per-bucket sum or distinct count to ``terms``, ``histogram``
    and ``composite`` buckets (for example distinct ``destination.port`` per ``source.ip``).
    Distinct counts may be approximate above 3,000 on Elasticsearch (cardinality), exact below.
    """

    kind: Literal["terms", "histogram", "distinct", "sum", "composite"]
    field: str | None = None
    size: int = 10
    interval_seconds: int = 3600
    metric: Literal["sum", "distinct"] | None = None
    metric_field: str | None = None
    fields: tuple[str, ...] = ()  # composite only


class EventStore(ABC):
    """Where normalised events live; see the module docstring for the semantics."""

    name: str = "store"

    @abstractmethod
    def write(self, events: Sequence[Event]) -> WriteResult: ...

    @abstractmethod
    def search(self, query: Query, *, size: int = 100, cursor: str | None = None) -> SearchPage: ...

    @abstractmethod
    def get(self, event_ids: Sequence[str]) -> list[Event]:
        """Fetch events by ``event.id`` (missing ids are simply absent from the result)."""

    @abstractmethod
    def count(self, query: Query) -> int: ...

    @abstractmethod
    def aggregate(self, query: Query, agg: Aggregation) -> list[Bucket]: ...

    @abstractmethod
    def delete_older_than(self, cutoff: datetime) -> int:
        """Retention: drop events whose ``@timestamp`` is before ``cutoff``; return how many."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """A small status document (reachable, document count, size) for ``soc doctor``."""

    def refresh(self) -> None:  # noqa: B027 - optional hook
        """Make recent writes visible to search (Elasticsearch needs it; SQLite does not)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

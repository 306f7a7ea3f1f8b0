"""The ECS mapping of the Elasticsearch store, for whoever compiles queries against it.

``templates/mappings.json`` is the source of truth; in short:

- Strings are ``keyword`` (exact, case-sensitive, aggregatable; ``ignore_above`` 1024, or 8191 for
  command lines, paths, URLs and Windows EventData) unless listed below. ``date_detection`` is off,
  so a string that looks like a date stays a keyword.
- Addresses are ``ip`` (``source.ip``, ``destination.ip``, ``host.ip``, ``related.ip``, ``observer.ip``,
  ``client.ip``, ``server.ip``, ``dns.resolved_ip`` and any other field named ``ip``): terms accept
  CIDR (``10.0.0.0/8``).
- Ports, byte and packet counters, pids, ``event.duration`` and status codes are ``long``.
- ``@timestamp``, ``event.created``, ``event.ingested``, ``event.start``, ``event.end`` are ``date``.
- ``message`` and ``event.original`` are ``match_only_text`` (full-text searchable, not keyword).
- Case-insensitive matching (Sigma's default): the fields Sigma rules address — process and parent
  ``name`` / ``executable`` / ``command_line``, ``file.path`` / ``file.name``, ``registry.*``,
  ``url.original``, ``user_agent.original``, ``dns.question.name``, ``host.name``, ``user.name`` and
  every ``winlog.event_data.*`` — carry a sub-field ``<field>.caseless``: a keyword with the
  ``soc_lowercase`` normalizer. Elasticsearch normalises term, wildcard and ``query_string``
  wildcard terms for such a field, so ``process.command_line.caseless:*WHOAMI*`` matches
  ``whoami.exe``. A pySigma pipeline should map Sigma fields to the ``.caseless`` sub-field for
  string comparisons (keep the plain field for exact/regex and aggregations). We chose a normalised
  keyword over the ``wildcard`` type because it also works on OpenSearch and keeps terms cheap.
- ``index.mapping.ignore_malformed`` is on: a value that does not fit its type (a bad IP) is
  skipped and listed in ``_ignored`` instead of rejecting the event.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from collector.store.elastic_setup import load_template

CASELESS_SUFFIX = "caseless"


def _walk(properties: dict[str, Any], prefix: str, out: set[str]) -> None:
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if CASELESS_SUFFIX in spec.get("fields", {}):
            out.add(path)
        if "properties" in spec:
            _walk(spec["properties"], path + ".", out)


@lru_cache(maxsize=1)
def caseless_fields() -> frozenset[str]:
    """Fields with a ``.caseless`` sub-field (``winlog.event_data.*`` have one too, dynamically)."""
    out: set[str] = set()
    _walk(load_template("mappings.json")["template"]["mappings"]["properties"], "", out)
    return frozenset(out)


def caseless_field(field: str) -> str | None:
    """The case-insensitive sub-field to query for ``field``, or None when it has none."""
    if field in caseless_fields() or field.startswith("winlog.event_data."):
        return f"{field}.{CASELESS_SUFFIX}"
    return None

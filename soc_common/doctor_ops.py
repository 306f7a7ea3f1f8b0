"""Deployment checks of ``soc doctor`` that look at running services, not at configuration.

Clock skew (this host against the collector's HTTP ``Date``; every agent against the collector, as
the collector measured it), queue depths and Elasticsearch cluster health all come from endpoints
the services already expose, so doctor needs no extra access: the collector's ``/health`` and
``/metrics`` and the cluster's ``_cluster/health``.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from soc_common.doctor import Finding, Status

CLOCK_TOLERANCE_S = 300.0  # beyond this the collector tags events clock_skew (collector/pipeline/normalize.py)
CLOCK_DRIFT_WARN_S = 30.0  # NTP keeps hosts within a second; 30 s means it is not running
QUEUE_WARN = 8  # batches waiting: the detection queue holds a few; more means it cannot keep up
QUEUE_FAIL = 64
SKEW_METRIC = "soc_collector_agent_clock_skew_seconds"
QUEUE_METRIC = "soc_collector_queue_depth"


@dataclass
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def http_get(
    url: str, *, ca_file: Path | None = None, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> HttpAnswer:
    """GET ``url``; HTTP errors are answers (status and body), only transport failures raise OSError."""
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file and ca_file.exists() else None)
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return HttpAnswer(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, dict(exc.headers.items()), exc.read())
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None


def _grade(value: float, warn: float, fail: float) -> Status:
    return "fail" if value >= fail else ("warn" if value >= warn else "ok")


def check_clock(
    role: str, base_url: str, ca_file: Path | None = None, tolerance: float = CLOCK_TOLERANCE_S
) -> Iterator[Finding]:
    """This host's clock against the collector's, from the ``Date`` header of its ``/health``."""
    name = "clock vs collector"
    try:
        before = datetime.now(UTC)
        answer = http_get(f"{base_url.rstrip('/')}/health", ca_file=ca_file)
        after = datetime.now(UTC)
    except (OSError, ssl.SSLError) as exc:
        yield Finding(role, name, "warn", f"collector /health unreachable: {exc}")
        return
    date = answer.headers.get("Date") or answer.headers.get("date")
    try:
        theirs = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        theirs = None
    if theirs is None:
        yield Finding(role, name, "warn", "the collector sent no usable Date header")
        return
    ours = before + (after - before) / 2  # the moment the collector most likely answered
    skew = (ours - theirs).total_seconds()  # Date has 1 s resolution: below 1 s is noise
    status = _grade(abs(skew), CLOCK_DRIFT_WARN_S, tolerance)
    ahead = "ahead of" if skew > 0 else "behind"
    yield Finding(
        role, name, status, f"this host is {abs(skew):.0f} s {ahead} the collector (tolerance {tolerance:.0f} s)"
    )


def scrape(metrics_url: str, bearer_token: str | None = None) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples of a Prometheus text endpoint by name: ``{name: [(labels, value), ...]}``."""
    headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
    answer = http_get(metrics_url, headers=headers)
    if answer.status != 200:
        raise OSError(f"HTTP {answer.status} from {metrics_url}")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.body.decode("utf-8", "replace")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def check_collector_metrics(
    role: str,
    metrics_url: str,
    bearer_token: str | None = None,
    *,
    tolerance: float = CLOCK_TOLERANCE_S,
    queue_warn: float = QUEUE_WARN,
    queue_fail: float = QUEUE_FAIL,
) -> Iterator[Finding]:
    """Agents whose clocks are off, and the collector's queue depths, from its ``/metrics``."""
    try:
        samples = scrape(metrics_url, bearer_token)
    except (OSError, ValueError) as exc:
        yield Finding(role, "collector metrics", "warn", f"cannot read {metrics_url}: {exc} (collector running?)")
        return
    skews = {labels.get("agent", "?"): value for labels, value in samples.get(SKEW_METRIC, [])}
    off = sorted(((a, s) for a, s in skews.items() if abs(s) > tolerance), key=lambda item: -abs(item[1]))
    if not skews:
        yield Finding(role, "agent clocks", "skip", "no agent has reported its send time yet")
    elif off:
        listed = ", ".join(f"{a} {s:+.0f} s" for a, s in off[:10])
        more = f" and {len(off) - 10} more" if len(off) > 10 else ""
        yield Finding(
            role,
            "agent clocks",
            "warn",
            f"{len(off)} of {len(skews)} agents off by more than {tolerance:.0f} s: {listed}{more}",
        )
    else:
        largest = max(abs(s) for s in skews.values())
        yield Finding(role, "agent clocks", "ok", f"{len(skews)} agents, largest skew {largest:.1f} s")
    queues = samples.get(QUEUE_METRIC, [])
    if not queues:
        yield Finding(role, "queues", "skip", "no queue reported (detection off?)")
    for labels, depth in queues:
        queue = labels.get("queue", "?")
        yield Finding(
            role,
            f"queue {queue}",
            _grade(depth, queue_warn, queue_fail),
            f"{depth:.0f} batches waiting (warn at {queue_warn:.0f}, fail at {queue_fail:.0f})",
        )


def check_elasticsearch_health(
    role: str,
    hosts: list[str],
    *,
    ca_file: Path | None = None,
    username: str | None = None,
    password: str | None = None,
    api_key: str | None = None,
) -> Iterator[Finding]:
    """``_cluster/health`` of the first host that answers: green ok, yellow warn, red fail."""
    headers: dict[str, str] = {}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    elif username:
        pair = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    errors: list[str] = []
    for host in hosts:
        try:
            answer = http_get(f"{host.rstrip('/')}/_cluster/health", ca_file=ca_file, headers=headers)
            health = json.loads(answer.body) if answer.status == 200 else None
        except (OSError, ssl.SSLError, ValueError) as exc:
            errors.append(f"{host}: {exc}")
            continue
        if not isinstance(health, dict):
            errors.append(f"{host}: HTTP {answer.status}")
            continue
        colour = str(health.get("status", "unknown"))
        status: Status = {"green": "ok", "yellow": "warn"}.get(colour, "fail")  # type: ignore[assignment]
        detail = (
            f"{colour}: {health.get('number_of_nodes', '?')} nodes, "
            f"{health.get('unassigned_shards', '?')} unassigned shards, "
            f"{health.get('active_shards_percent_as_number', '?')}% shards active"
        )
        yield Finding(role, "elasticsearch cluster", status, detail)
        return
    yield Finding(role, "elasticsearch cluster", "fail", "no host answered: " + "; ".join(errors)[:500])

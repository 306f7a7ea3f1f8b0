"""Merge several Prometheus text expositions into one.

The multi-process collector runs N workers, each with its own ``CollectorRegistry``; the supervisor
serves ``/metrics`` as the sum of its own registry and every worker's latest text, so operators see one
set of counters whatever the worker count. With a single input the output has the same samples as the
input, so a single-worker collector exposes exactly what it did before.

Parsing and rendering both go through prometheus_client (parser in, ``generate_latest`` out), so the
result is valid text format 0.0.4 with the same sample names (``x_total``, ``x_created``, ``x_bucket``...).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

_SampleKey = tuple[str, tuple[tuple[str, str], ...]]
_Combine = Callable[[float, float], float]

# Gauges whose merged value is the earliest of the workers' (start times), and the family-name suffix of
# gauges whose merged value is the largest (worst-case readings). Everything else is summed.
EARLIEST_GAUGES = frozenset({"soc_collector_start_time_seconds"})
LARGEST_GAUGE_SUFFIX = "_max_abs_seconds"
# Per-agent readings: an agent that reconnected may be known to two workers; a sum would double it.
FARTHEST_GAUGES = frozenset({"soc_collector_agent_clock_skew_seconds"})


def _add(a: float, b: float) -> float:
    return a + b


def _min(a: float, b: float) -> float:
    # NaN means "no reading": the other value wins.
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def _max(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def _farthest(a: float, b: float) -> float:
    """The reading farther from zero (the worse clock skew)."""
    return b if math.isnan(a) else a if math.isnan(b) or abs(a) >= abs(b) else b


def combiner(family_name: str, family_type: str, sample_name: str) -> _Combine:
    """How two workers' values of one sample merge: the special cases, then the default sum."""
    if sample_name.endswith("_created"):  # creation timestamps of counters/histograms: the earliest start
        return _min
    if family_type == "gauge" and family_name in EARLIEST_GAUGES:
        return _min
    if family_type == "gauge" and family_name.endswith(LARGEST_GAUGE_SUFFIX):
        return _max
    if family_type == "gauge" and family_name in FARTHEST_GAUGES:
        return _farthest
    return _add


@dataclass
class _Family:
    first: Metric  # name, documentation and type of the first text that had this family
    combine: dict[str, _Combine] = field(default_factory=dict)  # by sample name
    samples: dict[_SampleKey, Sample] = field(default_factory=dict)  # insertion order = first seen

    def add(self, sample: Sample) -> None:
        key = (sample.name, tuple(sorted((k, _label_key(k, v)) for k, v in sample.labels.items())))
        value = float(sample.value)
        old = self.samples.get(key)
        if old is None:
            self.samples[key] = Sample(sample.name, dict(sample.labels), value, sample.timestamp)
            return
        combine = self.combine.get(sample.name)
        if combine is None:
            combine = self.combine[sample.name] = combiner(self.first.name, self.first.type, sample.name)
        timestamp = old.timestamp
        if sample.timestamp is not None and (timestamp is None or float(sample.timestamp) > float(timestamp)):
            timestamp = sample.timestamp
        self.samples[key] = old._replace(value=combine(float(old.value), value), timestamp=timestamp)

    def metric(self) -> Metric:
        out = Metric(self.first.name, self.first.documentation, self.first.type)
        samples = list(self.samples.values())
        if out.type in ("histogram", "gaugehistogram"):
            samples = _order_histogram(samples)
        out.samples = samples
        return out


def _label_key(name: str, value: str) -> str:
    """Label value for matching: ``le``/``quantile`` compared as numbers ("1" and "1.0" are one bucket)."""
    if name in ("le", "quantile"):
        try:
            return floatToGoString(float(value))
        except ValueError:
            pass
    return value


def _order_histogram(samples: list[Sample]) -> list[Sample]:
    """Series in first-seen order; in each, buckets by ascending ``le`` (+Inf last), then _count/_sum."""
    groups: dict[tuple[tuple[str, str], ...], int] = {}

    def sort_key(s: Sample) -> tuple[int, int, float]:
        group = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        index = groups.setdefault(group, len(groups))
        if s.name.endswith("_bucket") and "le" in s.labels:
            try:
                return index, 0, float(s.labels["le"])
            except ValueError:
                return index, 0, math.inf
        return index, 1, 0.0

    # Keys are computed in first-seen order (so are the group indexes); sorted() is stable.
    keyed = [(sort_key(s), s) for s in samples]
    return [s for _, s in sorted(keyed, key=lambda pair: pair[0])]


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


def merge_expositions(texts: Sequence[bytes]) -> bytes:
    """One Prometheus text exposition (format 0.0.4) summing samples with the same name and labels."""
    families: dict[str, _Family] = {}
    skipped: list[str] = []
    conflicts: list[str] = []
    for index, text in enumerate(texts):
        try:
            parsed = list(text_string_to_metric_families(text.decode("utf-8")))
        except Exception as exc:  # a worker's bad text must not take /metrics down
            skipped.append(f"#{index} ({type(exc).__name__}: {exc})")
            continue
        for metric in parsed:
            family = families.get(metric.name)
            if family is None:
                family = families[metric.name] = _Family(first=metric)
            elif family.first.type != metric.type:  # summing a counter into a gauge would be wrong
                conflicts.append(f"{metric.name} ({metric.type} vs {family.first.type}, text #{index})")
                continue
            for sample in metric.samples:
                family.add(sample)
    if skipped:
        log.warning("metrics merge: skipped %d unparsable exposition(s): %s", len(skipped), "; ".join(skipped))
    if conflicts:
        log.warning("metrics merge: dropped families whose type differs from the first seen: %s", "; ".join(conflicts))
    if not families:
        return b""
    return generate_latest(_Snapshot([f.metric() for f in families.values()]))

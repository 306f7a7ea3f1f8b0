"""Robust statistics for baselines: median/MAD scores, seasonal slots, entropy, jitter.

Why median and MAD rather than mean/standard deviation or an EWMA: a baseline is learned from the
same data it later judges, and that data contains the very bursts we look for (a backup night, an
exfiltration hour, an outage). One such hour drags a mean and inflates a standard deviation for
weeks, hiding the next incident; the median and the median absolute deviation ignore up to half of
the samples being outliers and assume no distribution. An EWMA adapts faster but is pulled by every
outlier it sees, which is the wrong trade for security baselines that move slowly (office hours,
headcount). Samples are kept per weekday-hour slot for a few weeks, so the memory is bounded and
old behaviour ages out.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

MAD_TO_SIGMA = 1.4826  # makes the MAD comparable to a standard deviation for normal data


def median(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def mad(values: Sequence[float], centre: float | None = None) -> float:
    """Median absolute deviation (unscaled)."""
    if not values:
        return 0.0
    c = median(values) if centre is None else centre
    return median([abs(v - c) for v in values])


@dataclass(frozen=True)
class Baseline:
    """What a value is compared with: the centre, the robust spread, and how it was derived."""

    median: float
    scale: float  # robust sigma, floored (never zero)
    samples: int
    level: str  # which seasonal level supplied the samples

    def score(self, observed: float) -> float:
        """Robust z-score: how many robust sigmas ``observed`` lies above (+) or below (-) the median."""
        return (observed - self.median) / self.scale

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": round(self.median, 3),
            "scale": round(self.scale, 3),
            "samples": self.samples,
            "level": self.level,
        }


def baseline_of(values: Sequence[float], level: str, min_scale: float) -> Baseline:
    """Median and robust sigma; the sigma is floored at ``min_scale`` and at the Poisson noise of the median.

    Without the floor a perfectly steady series (MAD 0) would call any change an anomaly.
    """
    centre = median(values)
    scale = max(MAD_TO_SIGMA * mad(values, centre), min_scale, math.sqrt(max(centre, 0.0)))
    return Baseline(centre, scale, len(values), level)


class SeasonalSlots:
    """Samples of one hourly series, kept per (weekday, local hour) slot, newest last, bounded.

    Lookup falls back from the exact weekday-hour slot to the same hour on the same kind of day
    (workday/weekend) to the same hour on any day, taking the most specific level that has enough
    samples: a few days of history already give a usable hour-of-day profile, and the weekday
    profile takes over as weeks accumulate.
    """

    def __init__(self, slots: dict[str, list[float]] | None = None, keep: int = 6) -> None:
        self.slots: dict[str, list[float]] = slots or {}
        self.keep = keep

    @staticmethod
    def key(weekday: int, hour: int) -> str:
        return f"{weekday}:{hour}"

    def add(self, weekday: int, hour: int, value: float) -> None:
        ring = self.slots.setdefault(self.key(weekday, hour), [])
        ring.append(float(value))
        del ring[: -self.keep]

    def samples(self) -> int:
        return sum(len(v) for v in self.slots.values())

    def baseline(
        self, weekday: int, hour: int, workdays: frozenset[int], min_samples: int, min_scale: float
    ) -> Baseline | None:
        exact = self.slots.get(self.key(weekday, hour), [])
        if len(exact) >= min_samples:
            return baseline_of(exact, "weekday-hour", min_scale)
        is_workday = weekday in workdays
        same_kind = [
            v for d in range(7) if (d in workdays) == is_workday for v in self.slots.get(self.key(d, hour), [])
        ]
        if len(same_kind) >= min_samples:
            return baseline_of(same_kind, "workday-hour" if is_workday else "weekend-hour", min_scale)
        any_day = [v for d in range(7) for v in self.slots.get(self.key(d, hour), [])]
        if len(any_day) >= min_samples:
            return baseline_of(any_day, "hour-of-day", min_scale)
        return None


def local_slot(ts: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """(weekday, hour) of a UTC instant in the offices' local time: office hours are local."""
    local = ts.astimezone(tz)
    return local.weekday(), local.hour


def shannon_entropy(text: str) -> float:
    """Bits per character; random base32/base64 labels score about 4-5, words about 2.5-3.5."""
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


@dataclass(frozen=True)
class Periodicity:
    """How regular a series of event times is."""

    count: int
    period: float  # median inter-arrival, seconds
    jitter: float  # median absolute deviation of the inter-arrivals, seconds
    regular_fraction: float  # share of gaps within the tolerance of the period

    @property
    def relative_jitter(self) -> float:
        return self.jitter / self.period if self.period > 0 else math.inf


def periodicity(times: Sequence[float], tolerance: float) -> Periodicity | None:
    """Inter-arrival statistics of sorted epoch seconds; None when fewer than three events.

    ``tolerance`` is the relative deviation from the median gap still counted as regular, so a
    beacon with a few missed beats (gaps of 2x) still shows most gaps as regular.
    """
    if len(times) < 3:
        return None
    ordered = sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
    if len(gaps) < 2:
        return None
    period = median(gaps)
    if period <= 0:
        return None
    regular = sum(1 for g in gaps if abs(g - period) <= tolerance * period)
    return Periodicity(len(ordered), period, mad(gaps, period), regular / len(gaps))

"""Charts as inline SVG built on the server: no chart library, no script, nothing the strict CSP
has to allow. Colours come from CSS classes (``sev-high``...), never inline styles."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    rects: list[Rect]
    ticks: list[Tick]
    max_value: int


def stacked_bars(
    columns: list[tuple[str, dict[str, int]]],
    series: list[str],
    *,
    width: int = 720,
    height: int = 180,
    css_prefix: str = "sev-",
    label_every: int = 1,
) -> BarChart:
    """One bar per column, stacked by ``series`` in order; each rect has a ``<title>`` for
    screen readers and hover (the page also shows the numbers in a table)."""
    plot_h = height - 20
    top = max((sum(values.values()) for _, values in columns), default=0)
    scale = plot_h / top if top else 0.0
    slot = width / max(len(columns), 1)
    bar_w = max(slot * 0.7, 1.0)
    rects: list[Rect] = []
    ticks: list[Tick] = []
    for i, (label, values) in enumerate(columns):
        x = i * slot + (slot - bar_w) / 2
        y = float(plot_h)
        for name in series:
            count = values.get(name, 0)
            if not count:
                continue
            h = count * scale
            y -= h
            rects.append(Rect(round(x, 1), round(y, 1), round(bar_w, 1), round(h, 1), css_prefix + name,
                              f"{label}: {name} {count}"))  # fmt: skip
        if i % label_every == 0:
            ticks.append(Tick(round(x + bar_w / 2, 1), label))
    return BarChart(width, height, rects, ticks, top)

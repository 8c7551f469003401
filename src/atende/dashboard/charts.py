"""Plots as the dashboard draws them: pure geometry for server-rendered SVG (no script, no
chart library to ship). Bars for shares and counts, columns for a count per day, lines
for figures per day; the templates draw them, with the numbers beside them in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 1000, 200  # the viewBox of columns and lines
PAD = 10  # room above and below a line's extremes for its markers


@dataclass(frozen=True)
class Bar:
    """A horizontal bar: its label, its length (0–1 of the longest possible) and what it
    says in words."""

    label: str
    length: float
    words: str


def bars(items: Sequence[tuple[str, float | None, str]], top: float | None = None
         ) -> list[Bar]:
    """``items``: (label, value, words). Lengths are value / ``top`` (default: the largest
    value); a missing value is a bar of no length that still says why."""
    largest = top if top is not None else max((v for _, v, _ in items if v), default=0)
    return [Bar(label, (value or 0) / largest if largest else 0.0, words)
            for label, value, words in items]


@dataclass(frozen=True)
class Column:
    """A day's column: where it stands and how tall it is, in the viewBox."""

    label: str
    value: int
    x: float
    width: float
    y: float
    height: float


def columns(items: Sequence[tuple[str, int]]) -> tuple[list[Column], int]:
    """One column per (label, count), side by side across the width; and the count the
    full height stands for."""
    top = max((v for _, v in items), default=0)
    if not items:
        return [], 0
    step = WIDTH / len(items)
    gap = min(step * 0.2, 8)
    out = []
    for i, (label, value) in enumerate(items):
        height = HEIGHT * value / top if top else 0.0
        out.append(Column(label, value, i * step + gap / 2, step - gap, HEIGHT - height,
                          height))
    return out, top


@dataclass(frozen=True)
class Line:
    """One series as a polyline, with its points (for markers) where it has values."""

    name: str
    css: str
    points: list[tuple[float, float]]

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


def lines(count: int, series: Sequence[tuple[str, str, Sequence[float | None]]],
          top: float | None = None) -> tuple[list[Line], float]:
    """Series of ``count`` values each (None: no value that day, the line skips it),
    spread across the width; and the value the full height stands for."""
    largest = top if top is not None else max(
        (v for _, _, values in series for v in values if v is not None), default=0.0)
    step = WIDTH / count if count else 0.0
    out = []
    for name, css, values in series:
        span = HEIGHT - 2 * PAD
        points = [(i * step + step / 2,
                   HEIGHT - PAD - (span * v / largest if largest else 0.0))
                  for i, v in enumerate(values) if v is not None]
        out.append(Line(name, css, points))
    return out, largest

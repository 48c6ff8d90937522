"""Block-character charts as plain text lines: a one-line sparkline and a taller bar chart with axes.

Pure functions (no Textual), so a chart can be checked cell by cell in a unit
test. One column is one measurement; a failed measurement has no height and
is marked on the axis line, where it happened, so loss shows in time and not
only as a percentage. Block characters (▁▂▃▄▅▆▇█) give eight levels per line
and read on every terminal font and over a screen share, where braille dots
blur.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from widgets.format import ms

BLOCKS = " ▁▂▃▄▅▆▇█"
#: Marks a failed measurement on the axis line (and in the sparkline).
LOSS_MARK = "✖"
AXIS = "─"


@dataclass(frozen=True)
class Point:
    """One column: a measurement's value, or None when it failed."""

    value: float | None
    cold: bool = False
    """The series' first measurement (left out of the percentiles and of the scale)."""
    ts: float = 0.0
    """When it was measured (wall clock)."""


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value``: axis labels a reader can take in at once."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0 ** exponent
        if candidate >= value * (1 - 1e-9):
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def scale_top(points: Sequence[Point]) -> float:
    """The chart's top: a nice ceiling of the largest warm value (a cold start is clipped, not scaled to)."""
    warm = [p.value for p in points if p.value is not None and not p.cold]
    if not warm:
        warm = [p.value for p in points if p.value is not None]
    return nice_ceiling(max(warm)) if warm else 1.0


def _level(value: float, top: float, levels: int) -> int:
    """0..levels eighths; any measured value is at least one eighth high, so it never reads as a gap."""
    return max(1, min(levels, round(value / top * levels)))


def sparkline(points: Sequence[Point], width: int) -> str:
    """The last ``width`` points on one line; a failure is LOSS_MARK, a missing column a space."""
    shown = list(points)[-width:]
    top = scale_top(shown)
    cells = [LOSS_MARK if p.value is None else BLOCKS[_level(p.value, top, 8)] for p in shown]
    return " " * (width - len(cells)) + "".join(cells)


@dataclass(frozen=True)
class Chart:
    """A bar chart as text: ``rows`` top to bottom, then the axis line; labels beside them."""

    labels: list[str]
    """The y label of each row (ms, the value at the row's upper edge), right-aligned to one width; blank where
    none is written. The axis line's own label is "0"."""
    rows: list[str]
    """One string per row, one character per column."""
    axis: str
    """The x axis: AXIS per column, LOSS_MARK under a failed measurement."""
    loss_columns: list[int]
    cold_columns: list[int]
    top: float


def bar_chart(points: Sequence[Point], width: int, height: int) -> Chart:
    """The last ``width`` points as ``height`` rows of bars, right-aligned (the newest at the right edge)."""
    shown = list(points)[-width:]
    pad = width - len(shown)
    top = scale_top(shown)
    levels = height * 8
    heights = [0 if p.value is None else _level(p.value, top, levels) for p in shown]
    rows = []
    for row in range(height):
        floor = (height - 1 - row) * 8  # eighths below this row
        cells = [BLOCKS[max(0, min(8, h - floor))] for h in heights]
        rows.append(" " * pad + "".join(cells))
    axis = AXIS * pad + "".join(LOSS_MARK if p.value is None else AXIS for p in shown)
    labels = [""] * height
    if any(h for h in heights):  # no scale to label when nothing worked
        labels[0] = ms(top)
    if height >= 4 and labels[0]:  # a middle label where it does not crowd the top one
        middle = height // 2
        labels[middle] = ms(top * (height - middle) / height)
    label_width = max(1, *(len(label) for label in labels))
    return Chart(labels=[label.rjust(label_width) for label in labels], rows=rows, axis=axis,
                 loss_columns=[pad + i for i, p in enumerate(shown) if p.value is None],
                 cold_columns=[pad + i for i, p in enumerate(shown) if p.cold], top=top)

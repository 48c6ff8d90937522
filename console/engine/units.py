"""How numbers are written, once for every pane, report and command: durations in ms, percentages.

Widgets, `warroom check` and the capture summary all use these, so a kernel
RTT of 4 µs reads "0.004" everywhere instead of "0.0" in one place and
"0.00" in another.
"""

from __future__ import annotations


def ms(value: float | None) -> str:
    """A duration in ms with a width-stable precision: 0.004, 0.05, 4.2, 312.

    Kernel RTTs on loopback are a few microseconds: they keep three decimals
    rather than reading as zero.
    """
    if value is None:
        return "-"
    if value < 0.01:
        return f"{value:.3f}"
    if value < 1:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def ms_unit(value: object) -> str:
    """``ms(value)`` followed by " ms", or "-" for anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{ms(float(value))} ms"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"

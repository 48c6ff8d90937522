"""Small text formatters shared by widgets, so every pane writes numbers the same way."""

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


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def short(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

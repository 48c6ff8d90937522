"""Small text formatters shared by widgets, so every pane writes numbers the same way.

``ms`` and ``pct`` live in console/engine/units.py so that commands and reports
(which may not import widgets) write numbers the same way as the panes.
"""

from __future__ import annotations

from console.engine.units import ms, ms_unit, pct

__all__ = ["ms", "ms_unit", "pct", "short"]


def short(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

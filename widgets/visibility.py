"""Redraw only what is on screen: panes in hidden tabs skip their timers.

Seven tabs of panes redrawing every second cost several times the CPU of the
one a responder is looking at. The store keeps collecting either way; the app
calls ``refresh_now`` on a tab's panes the moment the tab is shown.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget


def displayed(widget: Widget) -> bool:
    """False when the widget or an ancestor is not displayed (a tab that is not the current one).

    Walks the ancestors instead of asking ``is_on_screen``: that asks the
    compositor, which in Textual 8.2 answers "not in layout" for every widget.
    """
    node: object = widget
    while isinstance(node, Widget):
        if not node.display:
            return False
        node = node.parent
    return True


def when_shown(widget: Widget, refresh: Callable[[], object]) -> Callable[[], None]:
    """A timer callback that runs ``refresh`` only while ``widget`` is displayed."""

    def tick() -> None:
        if displayed(widget):
            refresh()

    return tick


def refresh_shown(root: Widget) -> None:
    """Redraw every pane under ``root`` now (a tab that has just been shown)."""
    for widget in root.query("*"):
        refresh_now = getattr(widget, "refresh_now", None)
        if callable(refresh_now):
            refresh_now()

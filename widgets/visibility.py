"""Redraw only what is on screen: panes in hidden tabs skip their timers.

Seven tabs of panes redrawing every second cost several times the CPU of the
one a responder is looking at. The store keeps collecting either way; the app
calls ``refresh_now`` on a tab's panes the moment the tab is shown.
"""

from __future__ import annotations

import time
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


def on_the_second(widget: Widget, interval: float, callback: Callable[[], object]) -> None:
    """``widget.set_interval(interval, callback)``, with its ticks on whole multiples of ``interval``.

    Panes whose timers start at whatever moment they mounted redraw at
    different moments of each second, and each moment is a frame of its own:
    the compositor's fixed cost paid several times a second. Ticking on the
    same wall-clock grid puts their redraws in one frame.
    """
    delay = interval - (time.time() % interval)

    def start() -> None:
        # The first tick is on the grid too: set_interval alone would wait a whole
        # interval more, so a pane mounted just after a tick would redraw ~2 s late.
        callback()
        widget.set_interval(interval, callback)

    widget.set_timer(delay, start)

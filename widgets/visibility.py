"""Redraw only what is on screen, all at once: panes in hidden tabs skip their ticks.

Seven tabs of panes redrawing every second cost several times the CPU of the
one a responder is looking at. The store keeps collecting either way; the app
calls ``refresh_now`` on a tab's panes the moment the tab is shown. Every
pane ticks on one shared clock (``every``), so a second's redraws are one frame.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.widget import Widget


def displayed(widget: Widget) -> bool:
    """False when the widget or an ancestor is not displayed (a tab that is not the current one).

    Walks the ancestors instead of asking ``is_on_screen``: that asks the
    compositor, which in Textual 8.2 answers "not in layout" for every widget.
    """
    return _mounted_and_shown(widget)[1]


def focus_first_shown(root: Widget) -> None:
    """Focus the first widget under ``root`` that can take the focus and is displayed.

    From the screen's focus chain, which leaves out hidden widgets: a hidden one (the Layers chart at
    80x24) gives the focus up as soon as it gets it, and with it the keys of the pane it is in.
    """
    for widget in root.screen.focus_chain:
        if root in widget.ancestors:
            # At once, not widget.focus()'s call_later: a focus that lands after the user has asked for
            # another tab takes TabbedContent (which follows the focus) back to this one.
            root.screen.set_focus(widget)
            return


def refresh_shown(root: Widget) -> None:
    """Redraw every pane under ``root`` now (a tab that has just been shown)."""
    for widget in root.query("*"):
        refresh_now = getattr(widget, "refresh_now", None)
        if callable(refresh_now):
            refresh_now()


GRID_S = 0.5
"""The shared clock's beat: the shortest interval a pane may ask for (timers at most 2 Hz)."""


class PaneClock:
    """One timer for every pane of an app, on the wall clock's grid.

    A Textual timer per pane wakes the event loop and the pane's message pump
    on its own, at whatever moment the pane mounted: with a row per target and
    layer that was ~70 wake-ups a second at 5 targets, most of them for tabs
    nobody was looking at. This clock wakes once per beat, on whole multiples
    of GRID_S, and calls the callbacks that are due, whose widgets are still
    mounted and (unless asked otherwise) displayed. Their redraws then land in
    one frame.
    """

    def __init__(self, app: App[Any]) -> None:
        self._entries: list[tuple[weakref.ref[Widget | App[Any]], int, Callable[[], object], bool]] = []
        delay = GRID_S - (time.time() % GRID_S)

        def start() -> None:
            self._beat()
            app.set_interval(GRID_S, self._beat)

        app.set_timer(delay, start)

    def add(self, node: Widget | App[Any], interval: float, callback: Callable[[], object], hidden_too: bool,
            first: bool) -> None:
        entry = (weakref.ref(node), max(1, round(interval / GRID_S)), callback, hidden_too)
        if first:
            self._entries.insert(0, entry)
        else:
            self._entries.append(entry)

    def _beat(self) -> None:
        beat = round(time.time() / GRID_S)  # from the wall clock: 1 s panes draw on the whole second
        entries, self._entries = self._entries, []
        for done, entry in enumerate(entries):
            widget = entry[0]()
            mounted, shown = _mounted_and_shown(widget)
            if not mounted:
                continue  # unmounted (a removed target's row): forget it
            self._entries.append(entry)
            if beat % entry[1] == 0 and (shown or entry[3]):
                try:
                    entry[2]()
                except BaseException:
                    self._entries.extend(entries[done + 1:])  # the app reports the error; the others keep ticking
                    raise


def _mounted_and_shown(widget: Widget | App[Any] | None) -> tuple[bool, bool]:
    """(linked to the app through the DOM, displayed with every ancestor): one walk up for both."""
    shown = True
    node: object = widget
    while node is not None:
        if isinstance(node, Widget) and not node.display:
            shown = False
        if getattr(node, "is_dom_root", False):
            return True, shown
        node = getattr(node, "parent", None)
    return False, shown


_clocks: weakref.WeakKeyDictionary[App[Any], PaneClock] = weakref.WeakKeyDictionary()


def every(node: Widget | App[Any], interval: float, callback: Callable[[], object], *,
          hidden_too: bool = False, first: bool = False) -> None:
    """Call ``callback`` every ``interval`` seconds (rounded to the clock's 0.5 s beat) on the app's
    shared clock, while ``node`` (a widget, or the app itself) is mounted and, unless ``hidden_too``,
    displayed. ``first`` puts it before the callbacks already there (the app's diagnosis, which the
    panes then read in the same beat). Call from on_mount."""
    app = node if isinstance(node, App) else node.app
    clock = _clocks.get(app)
    if clock is None:
        clock = _clocks[app] = PaneClock(app)
    clock.add(node, interval, callback, hidden_too, first)

"""The replay scrubber: where the replay is in the recording, and where findings and markers happened.

Two lines under the tabs, only in a replay::

    ▶ PLAY 10x  14:03:22  +05:12 of 1:00:00   ▲ finding  ✓ cleared  ◆ marker
    ━━━━━━━━━━━━━━━━━━●───▲──────✓────◆─────────────────────────────────────

The part already played is heavy, the rest light; the symbols carry the
meaning without colour. A click on the bar asks to seek there (the app does
the seeking: this widget only shows what ``state()`` returns).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual import events
from textual.markup import escape
from textual.message import Message
from textual.widget import Widget

from widgets.visibility import every

REFRESH_S = 0.25
#: The symbol for each mark kind; a later kind wins a cell shared by several.
MARK_SYMBOLS = {"cleared": "✓", "appeared": "▲", "marker": "◆"}
MARK_STYLES = {"cleared": "$success", "appeared": "b $error", "marker": "b $warning"}


@dataclass(frozen=True)
class ScrubberState:
    """What the scrubber shows, as plain values (the replay player builds it)."""

    start: float
    end: float
    position: float
    speed: float
    paused: bool
    following: bool = False
    marks: Sequence[tuple[float, str]] = ()
    """(timestamp, "appeared" | "cleared" | "marker")."""


def span_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def bar_cells(state: ScrubberState, width: int) -> list[str]:
    """One character per cell: played, position, marks, the rest (pure, for tests)."""
    width = max(width, 2)
    length = max(state.end - state.start, 1e-9)

    def cell(ts: float) -> int:
        return min(width - 1, max(0, int((ts - state.start) / length * (width - 1) + 0.5)))

    at = cell(state.position)
    cells = ["━" if i < at else "─" for i in range(width)]
    rank = list(MARK_SYMBOLS)
    kinds: dict[int, str] = {}
    for ts, kind in state.marks:
        if kind in MARK_SYMBOLS:
            i = cell(ts)
            if i not in kinds or rank.index(kind) > rank.index(kinds[i]):
                kinds[i] = kind
    for i, kind in kinds.items():
        cells[i] = MARK_SYMBOLS[kind]
    cells[at] = "●"
    return cells


class ReplayScrubber(Widget):
    """Position, speed and the incident's findings and markers along the recording."""

    DEFAULT_CSS = """
    ReplayScrubber {
        height: 2;
        padding: 0 1;
        background: $boost;
    }
    """

    class SeekRequested(Message):
        """The user clicked the bar: seek to ``ts``."""

        def __init__(self, ts: float) -> None:
            super().__init__()
            self.ts = ts

    def __init__(self, state: Callable[[], ScrubberState], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        """Called on every redraw for what to show."""
        self._shown: ScrubberState | None = None

    def on_mount(self) -> None:
        every(self, REFRESH_S, self.refresh_now)

    def refresh_now(self) -> None:
        state = self.state()
        if state != self._shown:
            self._shown = state
            self.refresh()

    def status_line(self, state: ScrubberState) -> str:
        if state.following and state.position >= state.end - 2 and not state.paused:
            mode = "● LIVE"
        else:
            mode = "‖ PAUSED" if state.paused else "▶ PLAY"
        clock = time.strftime("%H:%M:%S", time.localtime(state.position))
        return (f"{mode} {state.speed:g}x  {clock}  +{span_text(state.position - state.start)} of "
                f"{span_text(state.end - state.start)}   ▲ finding ✓ cleared ◆ marker   "
                "space play  -/+ speed  ,/. ±10s  </> ±1m  j jump")

    def render(self) -> str:
        state = self._shown or self.state()
        width = max(self.size.width, 10)
        parts = [f"[b]{escape(self.status_line(state)[:width])}[/]\n"]
        for char in bar_cells(state, width):
            kind = next((k for k, symbol in MARK_SYMBOLS.items() if symbol == char), None)
            style = MARK_STYLES[kind] if kind else ("b $accent" if char in "●━" else "$text-muted")
            parts.append(f"[{style}]{char}[/]")
        return "".join(parts)

    def on_click(self, event: events.Click) -> None:
        if event.y != 1:
            return
        state = self.state()
        width = max(self.size.width, 2)
        fraction = min(max(event.x / (width - 1), 0.0), 1.0)
        self.post_message(self.SeekRequested(state.start + fraction * (state.end - state.start)))

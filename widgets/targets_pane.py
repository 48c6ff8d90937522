"""The targets pane: one row per probed target with its state, RTT chart and figures.

The rows share the pane's height: with room for four lines or more each (120x40
with five targets) they draw tall charts that grow with the pane; with less
(80x24) they fall back to two lines, and past the pane's height they scroll.
Only the rows in view are redrawn, so fifty targets cost about what the few
on screen do.
"""

from __future__ import annotations

from itertools import islice

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from console.engine.store import Store
from console.engine.target_state import TargetState, TargetStates
from probes.samples import LOCAL_HOST
from widgets.bars import Point
from widgets.target_row import COMPACT_HEIGHT, SHARE_HEIGHT, TALL_MIN_HEIGHT, TargetRow
from widgets.visibility import every

STATS_WINDOW_S = 60.0
#: Probes run at 1 Hz by default: redrawing faster would only repaint the same figures.
REFRESH_S = 1.0
EMPTY_TEXT = "no targets: run warroom HOST:PORT or a URL, or press a to add one"
#: A tall row is at most this high: past it a chart only gets coarser to read, not more useful.
TALL_MAX_HEIGHT = 12
#: Below this width a tall row's chart would be too narrow to read: rows stay compact.
TALL_MIN_WIDTH = 70


def row_height(pane_height: int, pane_width: int, rows: int, *, share: bool = False) -> int:
    """How many lines each of ``rows`` rows gets in a pane of this size (2: compact; share mode: 3 at least,
    for its badge and big digits)."""
    smallest = SHARE_HEIGHT if share else COMPACT_HEIGHT
    if rows <= 0 or pane_width < TALL_MIN_WIDTH:
        return smallest
    each = pane_height // rows
    return min(each, TALL_MAX_HEIGHT) if each >= TALL_MIN_HEIGHT else smallest


class TargetsPane(VerticalScroll):
    """Rows of targets, refreshed from the store at 1 Hz (never per sample).

    Needs the layer probes running for each target; the app starts them. Up/down
    move between rows; the focused row is the one that `x` removes.
    """

    DEFAULT_CSS = """
    TargetsPane {
        height: 1fr;
        border: round $primary;
        border-title-color: $primary;
        padding: 0;
    }
    TargetsPane > .empty {
        color: $text-muted;
        padding: 1 2;
    }
    """

    BINDINGS = [("down", "focus_next_row", "next"), ("up", "focus_previous_row", "previous")]

    paused: reactive[bool] = reactive(False)
    """While paused the rows keep what they show; probes keep recording."""

    def __init__(self, store: Store, host: str = LOCAL_HOST, *, states: TargetStates | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.host = host
        self.target_states = states if states is not None else TargetStates(store, window=STATS_WINDOW_S)
        """The one judgement of every target, shared with the other panes."""
        self._seen_version = -1
        self.border_title = "Targets (RTT ms, 60 s window)"

    def compose(self) -> ComposeResult:
        yield Static(EMPTY_TEXT, classes="empty")

    def on_mount(self) -> None:
        every(self, REFRESH_S, self.refresh_rows)
        self.watch(self, "scroll_y", self._scrolled, init=False)
        self.call_after_refresh(self.refresh_rows)  # show what the store already holds at once

    @property
    def targets(self) -> list[str]:
        return [row.target for row in self.query(TargetRow)]

    def add_target(self, target: str, label: str | None = None) -> None:
        if target in self.targets:
            return
        self.query(".empty").remove()
        self.mount(TargetRow(target, label))
        self._seen_version = -1
        self.call_after_refresh(self._fit_rows)

    def remove_target(self, target: str) -> None:
        rows = list(self.query(TargetRow))
        for row in rows:
            if row.target == target:
                row.remove()
        if all(row.target == target for row in rows):
            self.mount(Static(EMPTY_TEXT, classes="empty"))
        self.call_after_refresh(self._fit_rows)

    def focused_target(self) -> str | None:
        focused = self.app.focused
        return focused.target if isinstance(focused, TargetRow) else None

    def action_focus_next_row(self) -> None:
        self._move_focus(1)

    def action_focus_previous_row(self) -> None:
        self._move_focus(-1)

    def _move_focus(self, step: int) -> None:
        rows = list(self.query(TargetRow))
        if not rows:
            return
        current = self.app.focused
        index = rows.index(current) if current in rows else -step
        rows[(index + step) % len(rows)].focus()

    # -- layout -------------------------------------------------------------------

    def on_resize(self) -> None:
        self._fit_rows()

    def refit(self) -> None:
        """Size the rows again (the app calls it when share mode turns on or off)."""
        self._fit_rows()

    def _fit_rows(self) -> None:
        """Give every row the same share of the pane: tall charts when it is roomy, two lines when not."""
        rows = list(self.query(TargetRow))
        if not rows:
            return
        size = self.content_size
        lines = row_height(size.height, size.width, len(rows), share=self.app.has_class("-share"))
        changed = [row.set_lines(lines) for row in rows]
        if any(changed):
            self._seen_version = -1
            self.refresh_rows()

    def _scrolled(self) -> None:
        self._seen_version = -1  # rows that came into view were not redrawn while out of it
        self.refresh_rows()

    # -- drawing ------------------------------------------------------------------

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_rows()

    def _rows_in_view(self, rows: list[TargetRow]) -> list[TargetRow]:
        """The rows that are (partly) visible: the others are redrawn when scrolled to."""
        if not rows:
            return rows
        lines = max(1, rows[0].lines)
        first = int(self.scroll_y) // lines
        count = max(1, self.content_size.height // lines + 2)
        return rows[max(0, first - 1): first + count]

    def refresh_rows(self) -> None:
        if self.paused or self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        width = self.content_size.width - 2  # the row's padding
        for row in self._rows_in_view(list(self.query(TargetRow))):
            state = self.target_states.get(row.target, self.host)
            columns = max(1, width if row.tall else 20)
            row.show(state, self._points(state, columns), width)

    def _points(self, state: TargetState, columns: int) -> list[Point]:
        """The newest ``columns`` measurements of the state's primary series, oldest first."""
        if state.layer is None or state.value_field is None:
            return []
        ring = self.store.series((self.host, state.layer, state.target))
        newest = list(islice(reversed(ring), columns))
        points = []
        for sample in reversed(newest):
            value = sample.fields.get(state.value_field) if sample.ok else None
            if sample.ok and (isinstance(value, bool) or not isinstance(value, (int, float))):
                continue  # worked, but carries no time (nothing to draw)
            points.append(Point(float(value) if isinstance(value, (int, float)) else None,
                                cold=self.store.is_cold(sample), ts=sample.ts))
        return points

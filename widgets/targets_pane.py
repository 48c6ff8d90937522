"""The targets pane: one row per probed target with its RTT graph and figures."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from console.engine.store import SeriesKey, Store
from probes.samples import LOCAL_HOST
from widgets.target_row import TargetRow
from widgets.visibility import when_shown

#: Which series a row graphs, best first: the layer closest to what the user asked for.
PRIMARY_SERIES: tuple[tuple[str, str], ...] = (("http", "total_ms"), ("tcp", "rtt_ms"))
STATS_WINDOW_S = 60.0
#: Probes run at 1 Hz by default: redrawing faster would only repaint the same figures.
REFRESH_S = 1.0
EMPTY_TEXT = "no targets: run warroom HOST:PORT or a URL, or press a to add one"


class TargetsPane(VerticalScroll):
    """Rows of targets, refreshed from the store at 2 Hz (never per sample).

    Needs tcp (and, for URLs, http) probes running for each target; the app
    starts them. Up/down move between rows; the focused row is the one that
    `x` removes.
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

    def __init__(self, store: Store, host: str = LOCAL_HOST, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.host = host
        self._seen_version = -1
        self.border_title = "Targets (RTT ms, 60 s window)"

    def compose(self) -> ComposeResult:
        yield Static(EMPTY_TEXT, classes="empty")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, when_shown(self, self.refresh_rows))
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

    def remove_target(self, target: str) -> None:
        rows = list(self.query(TargetRow))
        for row in rows:
            if row.target == target:
                row.remove()
        if all(row.target == target for row in rows):
            self.mount(Static(EMPTY_TEXT, classes="empty"))

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

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_rows()

    def refresh_rows(self) -> None:
        if self.paused or self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        for row in self.query(TargetRow):
            primary = self._primary_series(row.target)
            if primary is None:
                continue
            key, field = primary
            stats = self.store.stats(key, field=field, seconds=STATS_WINDOW_S)
            last = self.store.last(key)
            status = last.fields.get("status") if last is not None and last.kind == "http" else None
            row.show(stats, self.store.values(key, field, seconds=STATS_WINDOW_S), key[1],
                     status if isinstance(status, int) else None)

    def _primary_series(self, target: str) -> tuple[SeriesKey, str] | None:
        """The series a row graphs: the highest layer that has samples for the target."""
        for kind, field in PRIMARY_SERIES:
            key = (self.host, kind, target)
            if self.store.last(key) is not None:
                return key, field
        return None

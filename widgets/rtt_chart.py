"""RttChart: round-trip times of several targets over the last minutes, on one chart or one chart each.

Needs: probes whose Samples carry ``rtt_ms`` — by default the "tcp" probe, one
``ProbeSpec("tcp", "HOST:PORT")`` per target, as the app starts for every target
with a port (``kind="icmp"`` charts the icmp probe's echoes instead). Failed
attempts (timeouts, refusals) have no RTT; they show as gaps in the line and in
the loss % and last failure of each target's summary.

Keys: ``m`` switches between one combined chart and one small chart per target;
``[`` and ``]`` shorten and lengthen the window (1..60 minutes).

Plotting is textual-plotext (Textualize's wrapper of plotext): line charts with
axes, a legend and braille resolution, following the app theme, and already a
dependency. Textual's own Sparkline draws a single series without axes, which
cannot compare targets on one time scale.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Grid, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from console.engine.store import SeriesKey, SeriesStats, Store
from probes.samples import LOCAL_HOST
from widgets.bars import nice_ceiling
from widgets.format import ms
from widgets.visibility import every

#: Theme variables the series cycle through, so lines follow the theme (and its high-contrast variant).
SERIES_COLOURS = ("primary", "accent", "warning", "success", "secondary", "error", "foreground")
#: On the combined chart each target also has its own point mark (legend and summary show it), so the
#: lines are told apart without colour: on 8-colour terminals, NO_COLOR, or by a colour-blind viewer.
SERIES_MARKERS = ("•", "+", "x", "o", "*", "#", "=")
WINDOW_STEPS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)
MODES = ("combined", "per-target")




def _short(target: str, width: int) -> str:
    return target if len(target) <= width else target[: width - 1] + "…"


#: Columns of a summary line besides the target's name (percentiles, jitter, loss, a failure kind).
SUMMARY_FIGURES_WIDTH = 64
#: The name column's width at 80 columns; a wider pane gives names the rest of its room.
NAME_WIDTH_MIN = 22
#: Longest name shown in the combined chart's legend (it sits inside the plot).
LEGEND_NAME_WIDTH = 32


def summary(target: str, stats: SeriesStats, width: int = NAME_WIDTH_MIN) -> str:
    """One line per target (fits 80 columns): percentiles, RFC 3550 jitter, loss, last failure kind."""
    loss = "-" if stats.loss_pct is None else f"{stats.loss_pct:.0f}%"
    text = (f"{_short(target, width):<{width}} p50 {ms(stats.p50)} p95 {ms(stats.p95)} "
            f"p99 {ms(stats.p99)} jit {ms(stats.jitter)} loss {loss}")
    if stats.last_error:
        text += f" ✗{stats.last_error}"
    return text


class RttChart(Widget, can_focus=True):
    """RTT of every target of one probe kind, combined or one chart per target."""

    DEFAULT_CSS = """
    RttChart {
        height: 1fr;
        min-height: 8;
        background: $surface;
    }
    RttChart:focus {
        border: round $primary;
    }
    RttChart > #rtt-empty {
        color: $text-muted;
        padding: 1 2;
    }
    RttChart > #rtt-summary {
        color: $text-muted;
        height: auto;
        max-height: 6;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RttChart > #rtt-combined {
        height: 1fr;
    }
    RttChart > #rtt-grid {
        grid-size: 2;
        grid-gutter: 0 1;
        height: 1fr;
    }
    RttChart .rtt-cell {
        height: 1fr;
        min-height: 8;
    }
    RttChart .rtt-title {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RttChart .rtt-small {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("m", "toggle_mode", "Chart mode"),
        Binding("left_square_bracket", "shorter", "Shorter window"),
        Binding("right_square_bracket", "longer", "Longer window"),
    ]

    mode: reactive[str] = reactive("combined")
    """"combined" (all targets on one chart) or "per-target" (one small chart each)."""
    minutes: reactive[float] = reactive(5.0)
    """How far back the charts reach."""

    def __init__(self, store: Store, *, kind: str = "tcp", field: str = "rtt_ms", minutes: float = 5.0,
                 mode: str = "combined", host: str | None = None, refresh_hz: float = 1.0,
                 labels: dict[str, str] | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.store = store
        self.kind = kind
        self.field = field
        self.host = host
        self.labels = labels if labels is not None else {}
        """target -> the name the other panes give it (the caller's dict: targets added later are named too)."""
        self.refresh_hz = min(refresh_hz, 2.0)  # the brief's cap: timers at most 2 Hz
        self.set_reactive(RttChart.minutes, minutes)
        self.set_reactive(RttChart.mode, mode)
        self._seen_version = -1
        self.redraws = 0
        self._cells: list[tuple[Vertical, Static, PlotextPlot]] = []
        """How many times the charts were rebuilt (tests check it follows store.version, not the timer)."""

    def compose(self) -> ComposeResult:
        yield Static(self._empty_text(), id="rtt-empty")
        yield Static("", id="rtt-summary")
        yield PlotextPlot(id="rtt-combined")
        yield Grid(id="rtt-grid")

    def on_mount(self) -> None:
        self._show_parts(has_data=False)
        every(self, 1.0 / self.refresh_hz, self._poll)
        self._poll()

    def _empty_text(self) -> str:
        what = "a target with a port (db.internal:5432 or a URL)" if self.kind == "tcp" else "a target"
        return (f"No {self.kind} RTT samples yet. Press a to add {what}, or start warroom with one "
                f"(warroom HOST:PORT); its {self.kind.upper()} RTT appears here within a second.")

    def _keys(self) -> list[SeriesKey]:
        return sorted(self.store.keys(kind=self.kind, host=self.host))

    def _show_parts(self, has_data: bool) -> None:
        self.query_one("#rtt-empty").display = not has_data
        self.query_one("#rtt-summary").display = has_data
        self.query_one("#rtt-combined").display = has_data and self.mode == "combined"
        self.query_one("#rtt-grid").display = has_data and self.mode == "per-target"

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self._poll()

    def _poll(self) -> None:
        if self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()  # the summaries' name column follows the width

    def watch_mode(self) -> None:
        if self.is_mounted:
            self.redraw()

    def watch_minutes(self) -> None:
        if self.is_mounted:
            self.redraw()

    def action_toggle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def action_shorter(self) -> None:
        smaller = [m for m in WINDOW_STEPS if m < self.minutes]
        self.minutes = smaller[-1] if smaller else WINDOW_STEPS[0]

    def action_longer(self) -> None:
        larger = [m for m in WINDOW_STEPS if m > self.minutes]
        self.minutes = larger[0] if larger else WINDOW_STEPS[-1]

    def _colour(self, index: int) -> tuple[int, int, int]:
        variables = self.app.theme_variables
        name = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        return Color.parse(variables.get(name, variables.get("foreground", "white"))).rgb

    def _points(self, key: SeriesKey, now: float) -> tuple[list[float], list[float]]:
        xs: list[float] = []
        ys: list[float] = []
        for sample in self.store.window(key, self.minutes * 60, now):
            value = sample.fields.get(self.field) if sample.ok else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                xs.append(round(sample.ts - now, 3))
                ys.append(float(value))
        return xs, ys

    def redraw(self) -> None:
        self.redraws += 1
        keys = self._keys()
        self._show_parts(has_data=bool(keys))
        if not keys:
            return
        now = time.time()
        window = self.minutes * 60
        names = [self.series_name(key) for key in keys]
        marker_width = 2 if self.mode == "combined" else 0
        room = self.size.width - SUMMARY_FIGURES_WIDTH - marker_width
        width = max(NAME_WIDTH_MIN, min(max(len(n) for n in names), room))
        lines = [f"{SERIES_MARKERS[index % len(SERIES_MARKERS)]} " * (self.mode == "combined")
                 + summary(name, self.store.stats(key, self.field, seconds=window, now=now), width)
                 for index, (key, name) in enumerate(zip(keys, names, strict=True))]
        self.query_one("#rtt-summary", Static).update("\n".join(lines))
        if self.mode == "combined":
            self._draw_combined(keys, names, now)
        else:
            self._draw_grid(keys, names, now)

    def series_name(self, key: SeriesKey) -> str:
        """The target as the Overview and the layer rows name it (its label), with its host when the
        chart shows every host's series."""
        host, _kind, target = key
        name = self.labels.get(target, target)
        return name if self.host or host == LOCAL_HOST else f"{host}:{name}"

    def _setup(self, plot: PlotextPlot, title: str) -> None:
        plt = plot.plt
        plt.clear_figure()
        plt.title(title)
        plt.xlabel("seconds ago")
        plt.xlim(-self.minutes * 60, 0)

    def _y_axis(self, plot: PlotextPlot, values: list[float]) -> None:
        """A y axis from 0 to a round top, labelled in ms by the shared formatter, smallest at the bottom.

        plotext's own ticks print 0.0280 above 0.0500 when the plot is only a
        few rows high; fixed ticks keep the order and the units.
        """
        top = nice_ceiling(max(values)) if values else 1.0
        steps = 4  # the pane shows the chart only where it has the rows for them (LayersPane)
        ticks = [top * i / steps for i in range(steps + 1)]
        plot.plt.ylim(0, top)
        plot.plt.yticks(ticks, [ms(t) if t else "0" for t in ticks])

    def _draw_combined(self, keys: list[SeriesKey], names: list[str], now: float) -> None:
        plot = self.query_one("#rtt-combined", PlotextPlot)
        self._setup(plot, f"{self.kind} RTT ms, last {self.minutes:g} min")
        shown: list[float] = []
        for index, (key, name) in enumerate(zip(keys, names, strict=True)):
            xs, ys = self._points(key, now)
            if xs:
                plot.plt.plot(xs, ys, label=_short(name, LEGEND_NAME_WIDTH),
                              marker=SERIES_MARKERS[index % len(SERIES_MARKERS)],
                              color=self._colour(index))
                shown += ys
        self._y_axis(plot, shown)
        plot.refresh()

    def _draw_grid(self, keys: list[SeriesKey], names: list[str], now: float) -> None:
        grid = self.query_one("#rtt-grid", Grid)
        while len(self._cells) < len(keys):  # one cell (title + chart) per target, kept between redraws
            title, plot = Static("", classes="rtt-title"), PlotextPlot(classes="rtt-small")
            cell = Vertical(title, plot, classes="rtt-cell")
            grid.mount(cell)
            self._cells.append((cell, title, plot))
        while len(self._cells) > len(keys):
            self._cells.pop()[0].remove()
        for index, (key, (_cell, title, plot)) in enumerate(zip(keys, self._cells, strict=True)):
            stats = self.store.stats(key, self.field, seconds=self.minutes * 60, now=now)
            loss = "-" if stats.loss_pct is None else f"{stats.loss_pct:.0f}%"
            failure = f" ✗{stats.last_error}" if stats.last_error else ""
            # The title is a Static, not plotext's title: plotext drops a title wider than its plot.
            title.update(f"{names[index]}  p95 {ms(stats.p95)} ms  loss {loss}{failure}")
            plot.plt.clear_figure()
            plot.plt.xlim(-self.minutes * 60, 0)
            xs, ys = self._points(key, now)
            if xs:
                plot.plt.plot(xs, ys, marker="braille", color=self._colour(index))
            self._y_axis(plot, ys)
            plot.refresh()

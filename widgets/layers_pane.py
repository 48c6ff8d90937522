"""The layers tab: every target's RTT on one chart, and where each target breaks, layer by layer.

The chart needs about 30 rows to be read (summaries, a plot of a dozen rows,
its axes). On a shorter window (80x24) it is hidden and one line says so and
how to see it: `v` shows the chart in place of the layer rows (and back), or
a taller window shows both.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from console.engine.store import Store
from console.engine.target_state import FAIL, LOSS, SLOW, WAIT, TargetStates
from probes.samples import LOCAL_HOST
from widgets.layer_row import LayerRow
from widgets.visibility import displayed, every, focus_first_shown

EMPTY_TEXT = "no targets: run warroom HOST:PORT or a URL, or press a to add one"
#: Below this height the tab shows the layer rows only (the chart would be a line or two of noise).
CHART_MIN_HEIGHT = 30
WORD_STYLE = {FAIL: "b $error", LOSS: "b $warning", SLOW: "b $warning", WAIT: "dim"}


class LayersPane(Vertical):
    """RttChart (TCP connect RTT, all targets; mounted when the tab is first shown) above a DNS/TCP/TLS/HTTP
    row per target.

    Needs the probes the app starts per target (probe_plan.specs_for_target).
    Each target's name line carries its state word (the engine's TargetState, as
    on the Overview); `v` switches between the rows and the chart when both do
    not fit.
    """

    DEFAULT_CSS = """
    LayersPane > #chart-slot {
        height: 3fr;
        min-height: 10;
    }
    LayersPane > #chart-slot > RttChart {
        height: 1fr;
    }
    LayersPane > VerticalScroll {
        height: 2fr;
        border-top: solid $primary;
    }
    LayersPane.-chart-only > VerticalScroll, LayersPane.-rows-only > #chart-slot {
        display: none;
    }
    LayersPane.-chart-only > #chart-slot {
        height: 1fr;
    }
    LayersPane.-rows-only > VerticalScroll {
        height: 1fr;
        border-top: none;
    }
    LayersPane > #chart-hint {
        height: 1;
        color: $text-muted;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        display: none;
    }
    LayersPane.-rows-only > #chart-hint, LayersPane.-chart-only > #chart-hint {
        display: block;
    }
    LayersPane .target-name {
        height: 1;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    LayersPane .empty {
        color: $text-muted;
        padding: 0 1;
    }
    """

    BINDINGS = [Binding("v", "toggle_chart", "chart/rows")]

    chart_only: reactive[bool] = reactive(False)
    """On a short window: True shows the chart in place of the layer rows."""

    def __init__(self, store: Store, targets: list[str], labels: dict[str, str] | None = None, *,
                 states: TargetStates | None = None, host: str = LOCAL_HOST, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.initial = list(targets)
        self.labels = labels or {}
        self.host = host
        self.target_states = states if states is not None else TargetStates(store)
        """The one judgement of every target, shared with the other panes."""
        self._seen_version = -1
        self._name_lines: dict[str, Static] = {}
        """Each target's name line (it carries the state word)."""
        self._names: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="chart-hint")
        # The chart (and plotext, ~25 ms of imports) comes when the tab is first shown, not before the
        # console's first frame.
        yield Vertical(id="chart-slot")
        with VerticalScroll(id="layer-rows"):
            if not self.initial:
                yield Static(EMPTY_TEXT, classes="empty")
            for target in self.initial:
                yield from self._rows(target)

    def on_mount(self) -> None:
        every(self, 1.0, self._poll)
        self._poll()

    def _rows(self, target: str) -> list[Static | LayerRow]:
        name = self._name_lines[target] = Static(escape(self.labels.get(target, target)), classes="target-name")
        # The rows redraw on this pane's timer: fifty targets are one timer, not fifty.
        return [name, LayerRow(self.store, target, host=self.host, states=self.target_states, timer=False)]

    @property
    def targets(self) -> list[str]:
        if not self.is_mounted:
            return list(self.initial)
        return [row.target for row in self.query(LayerRow)]

    # -- room for the chart ---------------------------------------------------------

    @property
    def chart_fits(self) -> bool:
        return self.size.height >= CHART_MIN_HEIGHT

    def on_resize(self) -> None:
        self._arrange()

    def watch_chart_only(self) -> None:
        self._arrange()

    def action_toggle_chart(self) -> None:
        self.chart_only = not self.chart_only

    def _arrange(self) -> None:
        fits = self.chart_fits
        self.set_class(not fits and not self.chart_only, "-rows-only")
        self.set_class(not fits and self.chart_only, "-chart-only")
        if fits:
            return
        hint = self.query_one("#chart-hint", Static)
        if self.chart_only:
            hint.update("RTT chart in place of the layer rows: press v for the rows")
        else:
            hint.update(f"RTT chart hidden ({self.size.height} rows; it needs {CHART_MIN_HEIGHT}): press v to show it, "
                        "or enlarge the window")

    def on_descendant_blur(self, _event: events.DescendantBlur) -> None:
        # The part just hidden may hold the focus (the chart after a resize, the rows after v): Textual then
        # drops it, to nothing, and with it this pane's keys (v would do nothing). Keep it in the pane.
        self.call_after_refresh(self._focus_shown)

    def _focus_shown(self) -> None:
        if not self.is_attached or self.screen.focused is not None:
            return  # focus went somewhere (another tab, a dialog): it is where the user put it
        if not displayed(self):
            return  # this tab is not shown: focusing in it would switch tabs
        focus_first_shown(self)

    # -- the state word on each target's name line --------------------------------------

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self._poll()

    def _mount_chart(self) -> None:
        slot = self.query_one("#chart-slot", Vertical)
        if not slot.children:
            from widgets.rtt_chart import RttChart

            slot.mount(RttChart(self.store, kind="tcp", field="rtt_ms", labels=self.labels))

    def _poll(self) -> None:
        self._mount_chart()
        if self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        for row in self.query(LayerRow):
            row.refresh_now()
        for target, name in self._name_lines.items():
            state = self.target_states.get(target, self.host)
            label = escape(self.labels.get(target, target))
            text = f"[{WORD_STYLE.get(state.word, 'b $success')}]{state.symbol} {state.word}[/] [b]{label}[/]"
            if state.failure is not None:
                where = f"{state.failure_layer.upper()} " if state.failure_layer else ""
                text += f"  [dim]{escape(where + state.failure)}[/]"
            if self._names.get(target) != text:
                self._names[target] = text
                name.update(Content.from_markup(text), layout=False)

    def add_target(self, target: str, label: str | None = None) -> None:
        if target in self.targets:
            return
        if label:
            self.labels[target] = label
        if not self.is_mounted:  # the Layers tab mounts after the console's first frame
            self.initial.append(target)
            return
        rows = self.query_one("#layer-rows", VerticalScroll)
        rows.query(".empty").remove()
        rows.mount(*self._rows(target))
        self._seen_version = -1

    def remove_target(self, target: str) -> None:
        if not self.is_mounted:
            self.initial = [t for t in self.initial if t != target]
            return
        rows = self.query_one("#layer-rows", VerticalScroll)
        children = list(rows.children)
        for index, child in enumerate(children):
            if isinstance(child, LayerRow) and child.target == target:
                child.remove()
                if index > 0:
                    children[index - 1].remove()  # its name line
        self._names.pop(target, None)
        self._name_lines.pop(target, None)

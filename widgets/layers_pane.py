"""The layers tab: every target's RTT on one chart, and where each target breaks, layer by layer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.widgets import Static

from console.engine.store import Store
from widgets.layer_row import LayerRow
from widgets.rtt_chart import RttChart

EMPTY_TEXT = "no targets: run warroom HOST:PORT or a URL, or press a to add one"


class LayersPane(Vertical):
    """RttChart (TCP connect RTT, all targets) above a DNS/TCP/TLS/HTTP row per target.

    Needs the probes the app starts per target (probe_plan.specs_for_target).
    """

    DEFAULT_CSS = """
    LayersPane RttChart {
        height: 3fr;
        min-height: 10;
    }
    LayersPane > VerticalScroll {
        height: 2fr;
        border-top: solid $primary;
    }
    LayersPane .target-name {
        height: 1;
        padding: 0 1;
        text-style: bold;
    }
    LayersPane .empty {
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, store: Store, targets: list[str], labels: dict[str, str] | None = None, *,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.initial = list(targets)
        self.labels = labels or {}

    def compose(self) -> ComposeResult:
        yield RttChart(self.store, kind="tcp", field="rtt_ms")
        with VerticalScroll(id="layer-rows"):
            if not self.initial:
                yield Static(EMPTY_TEXT, classes="empty")
            for target in self.initial:
                yield from self._rows(target)

    def _rows(self, target: str) -> list[Static | LayerRow]:
        name = escape(self.labels.get(target, target))
        return [Static(name, classes="target-name"), LayerRow(self.store, target)]

    @property
    def targets(self) -> list[str]:
        return [row.target for row in self.query(LayerRow)]

    def add_target(self, target: str, label: str | None = None) -> None:
        if target in self.targets:
            return
        if label:
            self.labels[target] = label
        rows = self.query_one("#layer-rows", VerticalScroll)
        rows.query(".empty").remove()
        rows.mount(*self._rows(target))

    def remove_target(self, target: str) -> None:
        rows = self.query_one("#layer-rows", VerticalScroll)
        children = list(rows.children)
        for index, child in enumerate(children):
            if isinstance(child, LayerRow) and child.target == target:
                child.remove()
                if index > 0:
                    children[index - 1].remove()  # its name line

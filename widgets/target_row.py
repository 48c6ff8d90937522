"""One target's row: state, RTT sparkline and the numbers a responder reads first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static

from console.engine.store import SeriesStats
from widgets.format import ms, pct, short

#: How a failure kind reads on screen: symbol and words, so it survives no colour.
FAILURE_TEXT = {
    "refused": "REFUSED (RST: nothing listening or rejected)",
    "timeout": "TIMEOUT (no answer)",
    "unreachable": "UNREACHABLE (no route)",
    "reset": "RESET (connection reset)",
    "exception": "ERROR",
    "connect-timeout": "CONNECT TIMEOUT (no TCP handshake)",
    "read-timeout": "READ TIMEOUT (connected, no response)",
    "write-timeout": "WRITE TIMEOUT (request not sent)",
    "pool-timeout": "POOL TIMEOUT (no free connection)",
    "total-timeout": "TOTAL TIMEOUT (response too slow)",
    "dns": "DNS (name did not resolve)",
}


class TargetRow(Widget, can_focus=True):
    """Two lines per target: state and name, then the RTT sparkline with p50/p95/p99, jitter, loss."""

    DEFAULT_CSS = """
    TargetRow {
        height: 2;
        padding: 0 1;
    }
    TargetRow:focus {
        background: $boost;
    }
    TargetRow > Horizontal {
        height: 1;
    }
    TargetRow .state {
        width: 1fr;
        height: 1;
    }
    TargetRow Sparkline {
        width: 20;
        height: 1;
        margin-right: 1;
    }
    TargetRow .numbers {
        width: 1fr;
        height: 1;
        color: $text-muted;
    }
    """

    def __init__(self, target: str, label: str | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.target = target
        """The target text as the user gave it; names the series in the store."""
        self.label = label or target
        self._shown_state = ""
        self._shown_graph: list[float] = []
        self._shown_numbers = ""

        # Built here, not in compose, so show() can update them before they are mounted.
        self._state = Label(self._state_text(None, "tcp"), classes="state")
        self._graph = Sparkline([], summary_function=max)
        self._numbers = Static("waiting for the first probe…", classes="numbers")

    def compose(self) -> ComposeResult:
        yield self._state
        with Horizontal():
            yield self._graph
            yield self._numbers

    def _state_text(self, stats: SeriesStats | None, layer: str, status: int | None = None) -> str:
        """Markup for the first line; the symbol carries the state even without colour.

        ``status`` is the last HTTP status: a fast 502 is a failure, not an OK.
        """
        name = escape(short(self.label, 40))
        if stats is None or stats.count == 0:
            return f"[dim]○[/] [b]{name}[/]  waiting for the first probe"
        failing_now = stats.last is None or (stats.loss_pct or 0) >= 100 or (status or 0) >= 500
        if failing_now:
            symbol = "[b $error]✖ FAIL[/]"
        elif stats.last_error or (status or 0) >= 400:
            symbol = "[b $warning]▲ LOSS[/]"
        else:
            symbol = "[b $success]● OK[/]"
        line = f"{symbol} [b]{name}[/]  [dim]{layer}[/]"
        if status is not None:
            colour = "$error" if status >= 500 else "$warning" if status >= 300 else "$success"
            line += f" [{colour}]{status}[/]"
        if stats.last_error:
            kind = escape(FAILURE_TEXT.get(stats.last_error, stats.last_error.upper()))
            colour = "$error" if failing_now else "$warning"
            line += f"  [{colour}]last: {kind}[/]"
        return line

    def show(self, stats: SeriesStats, rtts: list[float], layer: str, status: int | None = None) -> None:
        """Update from the store's figures; called by the pane on its refresh timer."""
        state = self._state_text(stats, layer, status)
        graph = rtts[-40:]
        if state != self._shown_state:  # unchanged text costs no layout or repaint
            self._shown_state = state
            self._state.update(state)
        if graph != self._shown_graph:
            self._shown_graph = graph
            self._graph.data = graph
        numbers = (f"{ms(stats.last)}ms p50 {ms(stats.p50)} p95 {ms(stats.p95)} p99 {ms(stats.p99)}"
                   f" jit {ms(stats.jitter)} loss {pct(stats.loss_pct)}")
        if numbers != self._shown_numbers:
            self._shown_numbers = numbers
            self._numbers.update(numbers)

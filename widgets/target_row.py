"""One target's row: state, RTT sparkline and the numbers a responder reads first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Digits, Label, Sparkline, Static

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


STATE_MARK = {"fail": "[b $error]✖ FAIL[/]", "loss": "[b $warning]▲ LOSS[/]", "ok": "[b $success]● OK[/]"}
#: Share mode's badge: symbol over word, so the state reads without colour from across a room.
BADGE_TEXT = {"fail": "✖\nFAIL", "loss": "▲\nLOSS", "ok": "●\nOK", "waiting": "○\nWAIT"}


class TargetRow(Widget, can_focus=True):
    """Two lines per target: state and name, then the RTT sparkline with p50/p95/p99, jitter, loss.

    Under share mode (the App's ``-share`` class) three lines: a state badge and the last RTT in big digits.
    """

    #: Unscoped, so the share-mode rules may name the App's class above the row (every rule names TargetRow).
    SCOPED_CSS = False

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
    /* Share mode (the App's -share class): the state and the last RTT get room a viewer can read on a
       compressed video call: a three-line badge with the state's symbol and word, the last RTT (ms, as
       the pane's title says) in big digits. */
    TargetRow > .badge, TargetRow > .rtt-big {
        display: none;
    }
    .-share TargetRow {
        height: 3;
        padding: 0 1 0 0;
    }
    .-share TargetRow > .badge {
        display: block;
        dock: left;
        width: 8;
        height: 3;
        margin-right: 1;
        content-align: center middle;
        text-style: bold;
        background: $panel;
    }
    .-share TargetRow > .badge.-ok { background: $success; color: $background; }
    .-share TargetRow > .badge.-loss { background: $warning; color: $background; }
    .-share TargetRow > .badge.-fail { background: $error; color: $background; }
    .-share TargetRow > .rtt-big {
        display: block;
        dock: right;
        width: auto;
        height: 3;
    }
    .-share TargetRow .state {
        text-style: bold;
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
        self._badge = Static("○\nWAIT", classes="badge -waiting")
        self._rtt_big = Digits("-", classes="rtt-big")

    def compose(self) -> ComposeResult:
        yield self._badge
        yield self._rtt_big
        yield self._state
        with Horizontal():
            yield self._graph
            yield self._numbers

    def _state_text(self, stats: SeriesStats | None, layer: str, status: int | None = None) -> str:
        """Markup for the first line; the symbol carries the state even without colour.

        ``status`` is the last HTTP status: a fast 502 is a failure, not an OK.
        """
        name = escape(short(self.label, 40))
        state = self.state_of(stats, status)
        if stats is None or state == "waiting":
            return f"[dim]○[/] [b]{name}[/]  waiting for the first probe"
        failing_now = state == "fail"
        symbol = STATE_MARK[state]
        line = f"{symbol} [b]{name}[/]  [dim]{layer}[/]"
        if status is not None:
            colour = "$error" if status >= 500 else "$warning" if status >= 300 else "$success"
            line += f" [{colour}]{status}[/]"
        if stats.last_error:
            kind = escape(FAILURE_TEXT.get(stats.last_error, stats.last_error.upper()))
            colour = "$error" if failing_now else "$warning"
            line += f"  [{colour}]last: {kind}[/]"
        return line

    @staticmethod
    def state_of(stats: SeriesStats | None, status: int | None = None) -> str:
        """"fail", "loss", "ok" or "waiting": the same judgement the first line's symbol shows."""
        if stats is None or stats.count == 0:
            return "waiting"
        if stats.last is None or (stats.loss_pct or 0) >= 100 or (status or 0) >= 500:
            return "fail"
        if stats.last_error or (status or 0) >= 400:
            return "loss"
        return "ok"

    def show(self, stats: SeriesStats, rtts: list[float], layer: str, status: int | None = None) -> None:
        """Update from the store's figures; called by the pane on its refresh timer."""
        badge = self.state_of(stats, status)
        if not self._badge.has_class(f"-{badge}"):
            self._badge.set_classes(f"badge -{badge}")
            self._badge.update(BADGE_TEXT[badge])
        big = ms(stats.last)
        if big != self._rtt_big.value:
            self._rtt_big.update(big)
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

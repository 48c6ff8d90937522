"""One target's row: its state, an RTT chart and the numbers a responder reads first.

Two shapes, chosen by the targets pane from the room it has:

- compact (2 lines, 80x24): the state line, then a 20-cell sparkline beside
  last / p50 / p95 / p99 / jitter / loss;
- tall (4 lines or more, e.g. 120x40): the state line, then a bar chart as
  tall as the row allows, one column per measurement, a y axis in ms and a
  ✖ on the x axis under every failed measurement, with the figures in a
  column on the right.

The state (word, symbol, failure) is the engine's TargetState: the same one
the Layers tab and the vantage table show.

Under share mode (the App's ``-share`` class) the row is at least three lines:
a state badge (symbol over word) on the left and the last RTT in big digits on
the right, so the state reads from across a room or over a compressed call.

The lines are drawn by RowLines with Textual's line API (``render_line``
returning cached Strips of a few Segments each) rather than Statics with
markup: every row's chart moves every second, and parsing markup and laying
out three widgets per row cost several times more CPU than the probes it shows.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Digits, Static

from console.engine.target_state import FAIL, LOSS, OK, SLOW, WAIT, TargetState
from widgets.bars import LOSS_MARK, Point, bar_chart, sparkline
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
#: The component style (see COMPONENT_CLASSES) each state word is drawn in.
WORD_ROLE = {FAIL: "fail", LOSS: "warn", SLOW: "warn", OK: "ok", WAIT: "dim"}
COMPACT_HEIGHT = 2
#: The smallest tall row: the state line, two chart lines and the axis line.
TALL_MIN_HEIGHT = 4
SPARK_WIDTH = 20
#: Cells right of a tall chart for the figures, and left of it for the y labels.
NUMBERS_WIDTH = 26
LABEL_WIDTH = 6

#: A line as (text, role) runs; role "" is the row's own style.
Line = list[tuple[str, str]]
#: Share mode's badge: symbol over word, so the state reads without colour from across a room.
BADGE_TEXT = {FAIL: "✖\nFAIL", LOSS: "▲\nLOSS", SLOW: "~\nSLOW", OK: "●\nOK", WAIT: "○\nWAIT"}
#: The badge's class per word (its colour in share mode).
BADGE_CLASS = {FAIL: "-fail", LOSS: "-loss", SLOW: "-loss", OK: "-ok", WAIT: "-waiting"}
SHARE_HEIGHT = 3


class RowLines(Widget):
    """The row's lines (state, chart, figures), drawn with the line API from (text, role) runs."""

    COMPONENT_CLASSES = {"target-row--ok", "target-row--fail", "target-row--warn", "target-row--dim",
                         "target-row--name", "target-row--muted", "target-row--loss",
                         "target-row--cold"}
    DEFAULT_CSS = """
    RowLines {
        height: 1fr;
        width: 1fr;
    }
    RowLines > .target-row--ok { color: $success; text-style: bold; }
    RowLines > .target-row--fail { color: $error; text-style: bold; }
    RowLines > .target-row--warn { color: $warning; text-style: bold; }
    RowLines > .target-row--dim { color: $text-muted; }
    RowLines > .target-row--name { text-style: bold; }
    RowLines > .target-row--muted { color: $text-muted; }
    RowLines > .target-row--loss { color: $error; text-style: bold; }
    RowLines > .target-row--cold { color: $text-muted; }
    """

    def __init__(self, content: list[Line]) -> None:
        super().__init__()
        self.content = content
        self._strips: list[Strip] = []
        self._strips_key: tuple[object, ...] = ()
        self._styles: dict[str, Style] = {}
        """Role -> style, kept until the style changes: asking for them walks every ancestor."""
        self._base: Style | None = None

    def set_content(self, content: list[Line]) -> None:
        if content != self.content:  # unchanged text costs no repaint
            self.content = content
            self._strips_key = ()
            self.refresh()

    def restyle(self) -> None:
        """The row's style changed (focus, theme): rebuild the strips in the new style."""
        self._strips_key = ()
        self._styles.clear()
        self._base = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips_key = ()
        self._styles.clear()
        self._base = None

    def render_line(self, y: int) -> Strip:
        # The strips are built once per change (text, width or style), not once per line drawn:
        # asking for rich_style walks every ancestor, and the compositor asks per line.
        width = self.content_size.width
        if self._base is None:
            self._base = self.rich_style
        base = self._base
        if not self._strips_key or self._strips_key[0] != width:
            self._strips = [self._strip(line, width, base) for line in self.content]
            self._strips_key = (width,)
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, base)

    def _strip(self, line: Line, width: int, base: Style) -> Strip:
        styles = self._styles

        def style(role: str) -> Style:
            if role not in styles:
                styles[role] = base + self.get_component_rich_style(f"target-row--{role}", partial=True) \
                    if role else base
            return styles[role]

        return Strip([Segment(text, style(role)) for text, role in line if text]).crop_extend(0, width, base)


class TargetRow(Widget, can_focus=True):
    """A target's state line, then its chart and figures (compact or tall, see the module docstring)."""

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
    /* Share mode (the App's -share class): the state and the last RTT get room a viewer can read on a
       compressed video call: a three-line badge with the state's symbol and word, the last RTT (ms, as
       the pane's title says) in big digits. */
    TargetRow > .badge, TargetRow > .rtt-big {
        display: none;
    }
    .-share TargetRow {
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
    """

    def __init__(self, target: str, label: str | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.target = target
        """The target text as the user gave it; names the series in the store."""
        self.label = label or target
        self.lines = COMPACT_HEIGHT
        """The row's height in lines, set by the pane (2: compact; 4 or more: tall; 3 or more in share mode)."""
        self.state: TargetState | None = None
        """The state last shown."""
        # Built here, not in compose, so show() can update them before they are mounted.
        self._lines = RowLines([self._state_line(None), [("waiting for the first probe…", "muted")]])
        self._badge = Static(BADGE_TEXT[WAIT], classes="badge -waiting")
        self._rtt_big = Digits("-", classes="rtt-big")

    def compose(self) -> ComposeResult:
        yield self._badge
        yield self._rtt_big
        yield self._lines

    def on_focus(self) -> None:
        self._lines.restyle()

    def on_blur(self) -> None:
        self._lines.restyle()

    @property
    def tall(self) -> bool:
        return self.lines >= TALL_MIN_HEIGHT

    @property
    def text(self) -> str:
        """What the row shows, as plain text (one line per screen line)."""
        return "\n".join("".join(text for text, _ in line) for line in self._lines.content)

    def set_lines(self, lines: int) -> bool:
        """Take ``lines`` lines (the pane's choice); True when that changed the shape."""
        if lines == self.lines:
            return False
        self.lines = lines
        self.styles.height = lines
        return True

    # -- what to show -----------------------------------------------------------------

    def _state_line(self, state: TargetState | None) -> Line:
        """The first line; the symbol and word carry the state even without colour."""
        name = short(self.label, 40)
        if state is None or state.word == WAIT:
            return [("○", "dim"), (" ", ""), (name, "name"), ("  waiting for the first probe", "")]
        line: Line = [(f"{state.symbol} {state.word}", WORD_ROLE[state.word]), (" ", ""), (name, "name"),
                      ("  ", ""), (state.layer or "", "dim")]
        if state.status is not None:
            role = "fail" if state.status >= 500 else "warn" if state.status >= 300 else "ok"
            line += [(" ", ""), (str(state.status), role)]
        if state.failure is not None and not state.failure.startswith("http "):
            kind = FAILURE_TEXT.get(state.failure, state.failure.upper())
            where = f"{state.failure_layer.upper()} " if state.failure_layer not in (None, state.layer) else ""
            line += [("  ", ""), (f"last: {where}{kind}", "fail" if state.word == FAIL else "warn")]
        elif state.word == SLOW:
            slow = next((s for s in state.layers.values() if s.state == "slow"), None)
            if slow is not None:
                line += [("  ", ""), (f"{slow.layer.upper()} slow: {slow.reason}", "warn")]
        return line

    def show(self, state: TargetState, points: Sequence[Point], width: int | None = None) -> None:
        """Update from the engine's state and the primary series' latest points (the pane's refresh)."""
        self.state = state
        lines = [self._state_line(state)]
        if state.word == WAIT or state.stats is None:
            lines.append([("waiting for the first probe…", "muted")])
        elif self.tall:
            # The lines' own width once laid out (share mode's badge and digits take some of the row).
            lines += self._tall_body(state, points, self._lines.content_size.width or width or 80)
        else:
            lines.append(self._compact_body(state, points))
        self._lines.set_content(lines)
        badge = BADGE_CLASS[state.word]
        if not self._badge.has_class(badge):
            self._badge.set_classes(f"badge {badge}")
            self._badge.update(BADGE_TEXT[state.word])
        # The latest RTT; none when the latest probe failed (the badge says how): an older success shown
        # as the last figure beside a FAIL badge read as if the target had just answered.
        big = ms(state.stats.last) if state.stats is not None and not state.stats.newest_failed else "-"
        if big != self._rtt_big.value:
            self._rtt_big.update(big)

    @staticmethod
    def _compact_body(state: TargetState, points: Sequence[Point]) -> Line:
        stats = state.stats
        assert stats is not None
        last = LOSS_MARK if stats.newest_failed else f"{ms(stats.last)}ms"
        numbers = (f" {last} p50 {ms(stats.p50)} p95 {ms(stats.p95)} p99 {ms(stats.p99)}"
                   f" jit {ms(stats.jitter)} loss {pct(stats.loss_pct)}")
        return [*_runs(sparkline(points, SPARK_WIDTH), ""), (numbers, "muted")]

    def _tall_body(self, state: TargetState, points: Sequence[Point], width: int) -> list[Line]:
        stats = state.stats
        assert stats is not None
        height = max(2, self.lines - 2)  # the state line above, the axis line below
        columns = max(10, width - LABEL_WIDTH - 2 - NUMBERS_WIDTH)
        chart = bar_chart(points, columns, height)
        last = f"{LOSS_MARK} failed" if stats.newest_failed else f"{ms(stats.last)} ms"
        figures = [f"last {last}  loss {pct(stats.loss_pct)}",
                   f"p50 {ms(stats.p50)}  p95 {ms(stats.p95)}",
                   f"p99 {ms(stats.p99)}  jit {ms(stats.jitter)}"]
        if stats.cold_ms is not None:
            figures.append(f"1st {ms(stats.cold_ms)} ms: not counted")
        lines: list[Line] = []
        cold = set(chart.cold_columns)
        for row, (label, bars) in enumerate(zip(chart.labels, chart.rows, strict=True)):
            line: Line = [(label.rjust(LABEL_WIDTH) + "┤", "muted")]
            line += _runs(bars, "", cold)  # bars in the row's own colour: it reads on every theme
            line.append(("  " + (figures[row] if row < len(figures) else ""), "muted"))
            lines.append(line)
        shown = list(points)[-columns:]
        span = f"  {shown[-1].ts - shown[0].ts:.0f} s to now" if len(shown) > 1 else ""
        axis: Line = [("0".rjust(LABEL_WIDTH) + "└", "muted"), *_runs(chart.axis, "muted"), (span, "dim")]
        if chart.loss_columns:
            axis += [("  ", ""), (LOSS_MARK, "loss"), (" failed", "dim")]
        lines.append(axis)
        return lines


def _runs(cells: str, role: str, cold: set[int] | None = None) -> Line:
    """``cells`` in ``role``, with each run of failure marks in "loss" and cold columns in "cold"."""
    out: Line = []
    start = 0
    for index in range(1, len(cells) + 1):
        if index == len(cells) or _cell_role(cells, index, role, cold) != _cell_role(cells, start, role, cold):
            out.append((cells[start:index], _cell_role(cells, start, role, cold)))
            start = index
    return out


def _cell_role(cells: str, index: int, role: str, cold: set[int] | None) -> str:
    if cells[index] == LOSS_MARK:
        return "loss"
    if cold and index in cold and cells[index] != " ":
        return "cold"
    return role

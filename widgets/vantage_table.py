"""VantageTable: a row per target, a column per host, so "only prod-2 sees it" is visible at a glance.

Each cell is the target's state from that host - the same word the Overview
and the Layers tab show, from console/engine/target_state.py - with p50/p99
and loss of its primary series over the window, and the failure behind the
word and its age. A target that fails from some hosts but not from others is
marked "only HOST fails" in the first column.

Needs the same probes running locally and on the SSH hosts: for each target
its layer probes locally (hub.start_probe) and in every RemoteHost's specs.
Construct with the Store (and the app's TargetStates, so every pane shares one
judgement); ``window`` is the seconds summarised.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.engine.store import Store
from console.engine.target_state import (
    FAIL,
    LOSS,
    OK,
    SLOW,
    TARGET_KINDS,
    TargetState,
    TargetStates,
    compute_state,
)
from probes.samples import LOCAL_HOST
from widgets.format import ms
from widgets.visibility import every

KIND_STATUS = "host_status"


@dataclass(frozen=True)
class Cell:
    """One target seen from one host."""

    state: TargetState

    @property
    def word(self) -> str:
        return self.state.word

    @property
    def count(self) -> int:
        return self.state.stats.count if self.state.stats else 0

    @property
    def p50(self) -> float | None:
        return self.state.stats.p50 if self.state.stats else None

    @property
    def p99(self) -> float | None:
        return self.state.stats.p99 if self.state.stats else None

    @property
    def loss_pct(self) -> float | None:
        return self.state.stats.loss_pct if self.state.stats else None

    @property
    def last_error(self) -> str | None:
        return self.state.failure

    @property
    def last_error_age(self) -> float | None:
        return self.state.failure_age_s

    @property
    def failing(self) -> bool:
        return self.state.failing


@dataclass(frozen=True)
class VantageRow:
    target: str
    cells: dict[str, Cell]
    only: tuple[str, ...]
    """Hosts that see failures while the other hosts with data do not (empty: none, or all)."""


def vantage_rows(store: Store, kind: str | None = None, window: float = 60.0, now: float | None = None,
                 states: TargetStates | None = None) -> tuple[list[str], list[VantageRow]]:
    """(host columns, rows): local first, then remote hosts in the order they first reported.

    ``kind`` limits the rows to targets probed with that kind ("tcp"); every target by default.
    """
    if states is None or states.window != window:
        states = TargetStates(store, window=window)
    if now is not None:  # a fixed "now" (tests): judge at that moment, not the store's clock
        judged = {(h, t): compute_state(store, h, t, window=window, now=now) for h, t in states.all()}
    else:
        judged = states.all()
    kinds = (kind,) if kind else TARGET_KINDS
    hosts: list[str] = []
    targets: list[str] = []
    for host, series_kind, target in store.keys(kind=None):
        if series_kind not in kinds:
            continue
        if host not in hosts:
            hosts.append(host)
        if target not in targets:
            targets.append(target)
    for host, _, _ in store.keys(kind=KIND_STATUS):  # a host that has no samples yet still gets its column
        if host not in hosts:
            hosts.append(host)
    order = {h: i for i, h in enumerate(hosts)}
    hosts.sort(key=lambda h: (h != LOCAL_HOST, order[h]))
    rows = []
    for target in targets:
        cells = {h: Cell(state) for h in hosts if (state := judged.get((h, target))) is not None}
        failing = tuple(h for h, c in cells.items() if c.failing)
        only = failing if 0 < len(failing) < len(cells) else ()
        rows.append(VantageRow(target=target, cells=cells, only=only))
    return hosts, rows


def format_cell(cell: Cell | None, palette: dict[str, str]) -> Text:
    """Two lines for one cell; ``palette`` maps "error"/"warning"/"success" to the theme's colours."""
    if cell is None:
        return Text("-\nno data", style="dim")
    error, warning, success = palette["error"], palette["warning"], palette["success"]
    line1 = Text(f"{ms(cell.p50)}/{ms(cell.p99)} ms")
    loss = cell.loss_pct or 0.0
    line1.append(f" {loss:.0f}%", style=f"bold {error}" if loss else "")
    state = cell.state
    style = {FAIL: f"bold {error}", LOSS: warning, SLOW: warning, OK: success}.get(state.word, "dim")
    line2 = Text(f"{state.symbol} {state.word}", style=style)
    if state.failure is not None:
        age = f" {state.failure_age_s:.0f}s" if state.failure_age_s is not None else ""
        line2.append(f" {state.failure_layer or ''} {state.failure}{age}".replace("  ", " "),
                     style=error if state.word == FAIL else warning)
    return Text("\n").join([line1, line2])


def theme_palette(variables: dict[str, str]) -> dict[str, str]:
    """The theme's colours for cells (DataTable cells are Rich Text, which cannot read $variables)."""
    return {name: variables.get(name, "") or "default" for name in ("error", "warning", "success")}


class VantageTable(Vertical):
    """Targets x hosts: RTT p50/p99, loss, last failure and layer state per vantage point."""

    DEFAULT_CSS = """
    VantageTable {
        height: auto;
        max-height: 100%;
    }
    VantageTable > .vantage-empty {
        color: $text-muted;
        padding: 0 1;
    }
    VantageTable > DataTable {
        height: auto;
        max-height: 100%;
        background: $surface;
    }
    """

    def __init__(self, store: Store, *, kind: str | None = None, window: float = 60.0,
                 states: TargetStates | None = None, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.kind = kind
        self.window = window
        self.target_states = states if states is not None and states.window == window else \
            TargetStates(store, window=window)
        """The one judgement of every (host, target), shared with the other panes."""
        self._seen_version = -1
        self._columns: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="vantage-empty")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        table.display = False
        yield table

    def on_mount(self) -> None:
        self.refresh_table()
        every(self, 1.0, self.refresh_table)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_table()

    def refresh_table(self) -> None:
        if self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        hosts, rows = vantage_rows(self.store, self.kind, self.window, states=self.target_states)
        empty = self.query_one(".vantage-empty", Static)
        table = self.query_one(DataTable)
        if not rows:
            empty.update(f"No {self.kind or 'target'} samples yet. Give targets (warroom TARGET --host H ...) "
                         "so every host probes them; each target gets a row, each host a column.")
            empty.display = True
            table.display = False
            return
        diverging = [r for r in rows if r.only]
        empty.display = bool(diverging)
        if diverging:
            empty.update("  ".join(f"{r.target}: only {', '.join(r.only)} fails" for r in diverging))
        table.display = True
        palette = theme_palette(self.app.get_css_variables())
        cursor = table.cursor_row
        if hosts != self._columns:
            table.clear(columns=True)
            table.add_column("target", key="target")
            for host in hosts:
                table.add_column(host, key=host)
            self._columns = hosts
        else:
            table.clear()
        for row in rows:
            first = Text(row.target, style="bold")
            if row.only:
                first.append(f"\nonly {', '.join(row.only)} fails", style=f"bold {palette['error']}")
            table.add_row(first, *(format_cell(row.cells.get(h), palette) for h in hosts), height=2,
                          key=row.target)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

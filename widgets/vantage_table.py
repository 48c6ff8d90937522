"""VantageTable: a row per target, a column per host, so "only prod-2 sees it" is visible at a glance.

Each cell: RTT p50/p99 and loss over the window, the last failure and its
age, and the state of the other layers probed for that target from that host
(dns/tls/http ✓/✖). A target that fails from some hosts but not from others
is marked "only HOST fails" in the first column.

Needs the same probes running locally and on the SSH hosts: for each target
``ProbeSpec("tcp", target)`` locally (hub.start_probe) and in every
RemoteHost's specs; dns/tls/http specs for the same target fill the layer
marks. Construct with the Store; ``kind`` picks the probe whose RTT is shown
("tcp" by default), ``window`` the seconds summarised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.engine.store import Store
from probes.samples import LOCAL_HOST
from widgets.format import ms
from widgets.visibility import when_shown

KIND_STATUS = "host_status"
LAYERS = ("dns", "tcp", "tls", "http")


@dataclass(frozen=True)
class Cell:
    """One target seen from one host."""

    count: int
    p50: float | None
    p99: float | None
    loss_pct: float | None
    last_error: str | None
    last_error_age: float | None
    last_ok: bool
    layers: tuple[tuple[str, bool], ...]

    @property
    def failing(self) -> bool:
        return bool(self.loss_pct) or not self.last_ok or any(not ok for _, ok in self.layers)


@dataclass(frozen=True)
class VantageRow:
    target: str
    cells: dict[str, Cell]
    only: tuple[str, ...]
    """Hosts that see failures while the other hosts with data do not (empty: none, or all)."""


def _cell(store: Store, host: str, kind: str, target: str, window: float, now: float) -> Cell | None:
    key = (host, kind, target)
    window_samples = store.window(key, window, now)
    if not window_samples:
        return None
    stats = store.stats(key, seconds=window, now=now)
    failures = [s for s in window_samples if not s.ok]
    last_fail = failures[-1] if failures else None
    layers = []
    for layer in LAYERS:
        if layer == kind:
            continue
        last = store.last((host, layer, target))
        if last is not None and now - last.ts <= window:
            layers.append((layer, last.ok))
    return Cell(count=stats.count, p50=stats.p50, p99=stats.p99, loss_pct=stats.loss_pct,
                last_error=last_fail.error if last_fail else None,
                last_error_age=now - last_fail.ts if last_fail else None,
                last_ok=window_samples[-1].ok, layers=tuple(layers))


def vantage_rows(store: Store, kind: str = "tcp", window: float = 60.0, now: float | None = None
                 ) -> tuple[list[str], list[VantageRow]]:
    """(host columns, rows): local first, then remote hosts in the order they first reported."""
    now = time.time() if now is None else now
    hosts: list[str] = []
    targets: list[str] = []
    for host, _, target in store.keys(kind=kind):
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
        cells = {h: c for h in hosts if (c := _cell(store, h, kind, target, window, now)) is not None}
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
    line2 = Text()
    if cell.last_error is not None and cell.last_error_age is not None:
        line2.append(f"✖{cell.last_error} {cell.last_error_age:.0f}s", style=error if not cell.last_ok else warning)
    else:
        line2.append("✓ ok", style=success)
    for layer, ok in cell.layers:
        line2.append(f" {layer}{'✓' if ok else '✖'}", style="" if ok else error)
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

    def __init__(self, store: Store, *, kind: str = "tcp", window: float = 60.0, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.kind = kind
        self.window = window
        self._seen_version = -1
        self._columns: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="vantage-empty")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        table.display = False
        yield table

    def on_mount(self) -> None:
        self.refresh_table()
        self.set_interval(1.0, when_shown(self, self.refresh_table))

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_table()

    def refresh_table(self) -> None:
        if self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        hosts, rows = vantage_rows(self.store, self.kind, self.window)
        empty = self.query_one(".vantage-empty", Static)
        table = self.query_one(DataTable)
        if not rows:
            empty.update(f"No {self.kind} samples yet. Give targets (warroom TARGET --host H ...) so every host "
                         "probes them; each target gets a row, each host a column.")
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

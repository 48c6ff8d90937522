"""ConnTable: every socket on a host, with summaries, filtering, sorting and grouping.

Needs the ``conns`` probe: ``ProbeSpec("conns", interval=1.0)`` (summary
Samples of kind ``conns`` and table snapshots of kind ``conns_table``). If a
``system`` probe runs for the same host, its CPU/memory/load/fd figures are
shown as a host-pressure line.

Keys: ``/`` filter (``port:5432 proc:java state:close-wait remote:10.0.0.5``,
bare words match anywhere), ``escape`` clear the filter, ``s`` next sort
column, ``r`` reverse, ``g`` group by remote endpoint.

Redraws only what changed. The rows live in ``ConnGrid``, a Line-API scroll
view that renders only the lines on screen: a refresh compares each visible
line with what is on screen and repaints only the lines that differ. (Textual's
DataTable was the first choice, but with 10,000 rows it measured 1.5 s to fill,
12 ms per removed row and 0.65 ms per updated cell: a busy host's TIME-WAIT
churn alone would have cost seconds per refresh.) Idle time is shown in steps
(1 s, 5 s, 30 s ...) so an idle socket's line does not change every second.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Click
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

from console.engine.store import Store
from probes.conns import (
    C_HIDDEN,
    C_LASTRCV,
    C_LASTSND,
    C_LOCAL,
    C_PID,
    C_PROCESS,
    C_PROTO,
    C_RECVQ,
    C_REMOTE,
    C_RETRANS,
    C_RTT,
    C_SENDQ,
    C_STATE,
    C_UID,
    KIND,
    TABLE_KIND,
)
from probes.samples import LOCAL_HOST, Sample
from widgets.visibility import every

#: (key, header) of the socket view's columns.
SOCKET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("proto", "Proto"), ("state", "State"), ("local", "Local"), ("remote", "Remote"), ("process", "Process"),
    ("rtt", "RTT ms"), ("retrans", "Retr"), ("recvq", "RecvQ"), ("sendq", "SendQ"), ("idle", "Idle≥s"),
)
GROUP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("remote", "Remote endpoint"), ("sockets", "Sockets"), ("estab", "ESTAB"), ("close_wait", "CLOSE-WAIT"),
    ("time_wait", "TIME-WAIT"), ("processes", "Processes"), ("rtt", "avg RTT"), ("retrans", "Retr"),
)
SORTABLE = ("state", "local", "remote", "process", "rtt", "retrans", "recvq", "sendq", "idle")
GROUP_SORTABLE = ("sockets", "remote", "close_wait", "time_wait", "rtt", "retrans")


@dataclass(frozen=True)
class ConnFilter:
    """What the user typed after ``/``: field:value words (port, proc, state, remote) and bare words."""

    port: tuple[int, ...] = ()
    process: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    remote: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ConnFilter:
        port: list[int] = []
        process: list[str] = []
        state: list[str] = []
        remote: list[str] = []
        words: list[str] = []
        for token in text.split():
            name, sep, value = token.partition(":")
            name = name.lower()
            if sep and value and name == "port" and value.isdigit():
                port.append(int(value))
            elif sep and value and name in ("proc", "process", "pid"):
                process.append(value.lower())
            elif sep and value and name == "state":
                state.append(value.upper().replace("_", "-"))
            elif sep and value and name in ("remote", "dst", "peer"):
                remote.append(value.lower())
            else:
                words.append(token.lower())
        return cls(tuple(port), tuple(process), tuple(state), tuple(remote), tuple(words))

    @property
    def empty(self) -> bool:
        return not (self.port or self.process or self.state or self.remote or self.words)

    def match(self, row: list[Any]) -> bool:
        local, remote = str(row[C_LOCAL]), str(row[C_REMOTE])
        if self.port:
            ports = {local.rpartition(":")[2], remote.rpartition(":")[2]}
            if not any(str(p) in ports for p in self.port):
                return False
        if self.process:
            who = f"{row[C_PROCESS] or ''} {row[C_PID] if row[C_PID] is not None else ''}".lower()
            if not any(p in who for p in self.process):
                return False
        if self.state and not any(str(row[C_STATE]).startswith(s) for s in self.state):
            return False
        if self.remote and not any(r in remote.lower() for r in self.remote):
            return False
        if self.words:
            hay = f"{row[C_PROTO]} {row[C_STATE]} {local} {remote} {row[C_PROCESS] or ''} {row[C_PID] or ''}".lower()
            if not all(w in hay for w in self.words):
                return False
        return True


def _who(row: list[Any]) -> str:
    if row[C_PID] is not None:
        return f"{row[C_PROCESS]}[{row[C_PID]}]"
    if row[C_HIDDEN]:
        return f"? uid {row[C_UID]} (hidden)"
    return "-"


#: Idle time is shown in steps, not to the millisecond: an exact figure would
#: change every second for every socket and turn each refresh into a full redraw.
IDLE_STEPS = (0, 1, 5, 30, 60, 300, 3600)


def _idle_s(row: list[Any]) -> int | str:
    """Seconds since the socket last sent or received, rounded down to IDLE_STEPS."""
    values = [v for v in (row[C_LASTSND], row[C_LASTRCV]) if isinstance(v, int)]
    if not values:
        return ""
    seconds = min(values) / 1000.0
    return max(step for step in IDLE_STEPS if step <= seconds)


def socket_cells(row: list[Any]) -> tuple[Any, ...]:
    """The displayed values of one socket, in SOCKET_COLUMNS order (numbers stay numbers for sorting)."""
    rtt = row[C_RTT]
    return (row[C_PROTO], row[C_STATE], row[C_LOCAL], row[C_REMOTE], _who(row),
            rtt if isinstance(rtt, float) else "", row[C_RETRANS] if row[C_RETRANS] is not None else "",
            row[C_RECVQ], row[C_SENDQ], _idle_s(row))


def group_cells(rows: list[list[Any]]) -> dict[str, tuple[Any, ...]]:
    """Sockets grouped by remote endpoint, in GROUP_COLUMNS order, keyed by the endpoint."""
    buckets: dict[str, list[list[Any]]] = defaultdict(list)
    for row in rows:
        if row[C_STATE] not in ("LISTEN", "UNCONN"):
            buckets[str(row[C_REMOTE])].append(row)
    out: dict[str, tuple[Any, ...]] = {}
    for remote, members in buckets.items():
        states = Counter(str(r[C_STATE]) for r in members)
        procs = Counter(_who(r) for r in members)
        rtts = [r[C_RTT] for r in members if isinstance(r[C_RTT], float)]
        names = ", ".join(name for name, _ in procs.most_common(2)) + (" …" if len(procs) > 2 else "")
        out[remote] = (remote, len(members), states.get("ESTAB", 0), states.get("CLOSE-WAIT", 0),
                       states.get("TIME-WAIT", 0), names, round(sum(rtts) / len(rtts), 3) if rtts else "",
                       sum(r[C_RETRANS] or 0 for r in members))
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before blanks, text by its words: one key for every column's cells."""
    if isinstance(value, (int, float)):
        return (0, value)
    if value == "":
        return (2, "")
    return (1, str(value))


def _display(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _fmt(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def summary_lines(summary: Sample | None, system: Sample | None) -> list[str]:
    """The summary above the table, as Textual markup lines (theme variables only)."""
    if summary is None:
        return []
    if not summary.ok:
        return [f"[$error]connections: {summary.error}: {summary.message}[/]"]
    f: dict[str, Any] = summary.fields
    states = Counter({k.split(":", 1)[1]: 0 for k in (f.get("by_state") or {})})
    by_state = f.get("by_state") or {}
    for key, count in by_state.items() if isinstance(by_state, dict) else []:
        states[key.split(":", 1)[1]] += int(count)
    cw = states.get("CLOSE-WAIT", 0)
    state_text = " · ".join((f"[$warning]{s} {n:,}[/]" if s == "CLOSE-WAIT" and cw else f"{s} {n:,}")
                            for s, n in states.most_common(6))
    lines = [f"[b]{_fmt(f.get('total'))} sockets[/] · {state_text}"]
    ports = f.get("listen_ports") or []
    missing = f.get("listen_missing") or []
    listen = "listen " + (" ".join(f":{p}" for p in ports[:10]) if ports else "nothing")  # type: ignore[index]
    if isinstance(ports, list) and len(ports) > 10:
        listen += f" +{len(ports) - 10}"
    if missing:
        listen += " · [$error]NOT listening " + " ".join(f":{p}" for p in missing) + "[/]"  # type: ignore[union-attr]
    lines.append(listen)
    parts = []
    eph_pct = f.get("ephemeral_pct")
    if f.get("ephemeral_size"):
        eph = (f"ephemeral {_fmt(f.get('ephemeral_used'))}/{_fmt(f.get('ephemeral_size'))} "
               f"(one peer {_fmt(f.get('ephemeral_top_count'))}, {eph_pct}%)")
        parts.append(_tone(eph, eph_pct))
    if f.get("conntrack_max"):
        parts.append(_tone(f"conntrack {_fmt(f.get('conntrack_count'))}/{_fmt(f.get('conntrack_max'))}",
                           f.get("conntrack_pct")))
    else:
        parts.append("no conntrack")
    fd_top = f.get("fd_top") or []
    if isinstance(fd_top, list) and fd_top and isinstance(fd_top[0], dict):
        top = fd_top[0]
        parts.append(_tone(f"fds {top['name']}[{top['pid']}] {_fmt(top['fds'])}/{_fmt(top['limit'])}",
                           top.get("pct")))
    lines.append(" · ".join(parts))
    if system is not None and system.ok:
        s: dict[str, Any] = system.fields
        lines.append(f"host cpu {s.get('cpu_percent')}% · mem {s.get('mem_percent')}% · load {s.get('load1')} "
                     f"· files {_fmt(s.get('open_fds'))}/{_fmt(s.get('fd_max'))}")
    hidden = f.get("hidden_sockets") or 0
    if hidden or (f.get("euid") not in (0, None) and f.get("unreadable_processes")):
        uids = ", ".join(str(u) for u in (f.get("hidden_uids") or []))  # type: ignore[union-attr]
        noun = "socket" if hidden == 1 else "sockets"
        lines.append(f"[$warning]{hidden} hidden {noun}{f' (uid {uids})' if uids else ''}: processes this "
                     "user cannot read; root would show more[/]")
    return lines


def _tone(text: str, pct: object) -> str:
    """``text`` marked near-exhausted (▲, from 80%) or exhausted (✖, from 95%): symbol and colour."""
    if isinstance(pct, (int, float)) and pct >= 95:
        return f"[$error]✖ {text}[/]"
    if isinstance(pct, (int, float)) and pct >= 80:
        return f"[$warning]▲ {text}[/]"
    return text


#: Widest a column may get; longer text (IPv6 addresses, long process names) ends in "…".
MAX_COLUMN_WIDTH = 40
NUMERIC = frozenset({"rtt", "retrans", "recvq", "sendq", "idle", "sockets", "estab", "close_wait", "time_wait"})


class ConnGrid(ScrollView, can_focus=True):
    """The rows of ConnTable: a scrollable grid that draws only the lines on screen.

    Part of ConnTable (not used alone). ``set_rows`` takes the rows in display
    order; it repaints only visible lines whose text or look changed and counts
    them in ``lines_repainted``.
    """

    COMPONENT_CLASSES = {"conn-grid--header", "conn-grid--cursor", "conn-grid--odd", "conn-grid--warn",
                         "conn-grid--muted"}
    DEFAULT_CSS = """
    ConnGrid { height: 1fr; }
    ConnGrid > .conn-grid--header { text-style: bold; background: $panel; }
    ConnGrid > .conn-grid--cursor { background: $primary 40%; }
    ConnGrid:focus > .conn-grid--cursor { background: $primary; color: $text; }
    ConnGrid > .conn-grid--odd { background: $surface; }
    ConnGrid > .conn-grid--warn { color: $warning; }
    ConnGrid > .conn-grid--muted { color: $text-muted; }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "Top", show=False),
        Binding("end", "jump(-1)", "Bottom", show=False),
        Binding("left", "pan(-8)", "Left", show=False),
        Binding("right", "pan(8)", "Right", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: tuple[tuple[str, str], ...] = ()
        self.keys: list[str] = []
        self.rows: list[tuple[Any, ...]] = []
        self.texts: list[str] = []
        self.marks: list[str] = []
        self.header = ""
        self._cache: dict[str, tuple[tuple[Any, ...], list[str], str]] = {}
        self._widths: list[int] = []
        self.cursor = 0
        self.lines_repainted = 0
        """Lines repainted by set_rows since the widget was made (for tests and the benchmark)."""

    # --- data -----------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.rows)

    def get_row_at(self, index: int) -> tuple[Any, ...]:
        return self.rows[index]

    @property
    def cursor_key(self) -> str | None:
        return self.keys[self.cursor] if 0 <= self.cursor < len(self.keys) else None

    def set_rows(self, columns: tuple[tuple[str, str], ...], keys: list[str], rows: list[tuple[Any, ...]],
                 marks: list[str]) -> int:
        """Show ``rows`` (display order); return how many visible lines were repainted."""
        # Most rows are the same as a second ago: reuse their formatted cells and line text.
        cache = self._cache
        shown: list[list[str]] = []
        for key, row in zip(keys, rows):  # noqa: B905 - one key per row
            hit = cache.get(key)
            shown.append(hit[1] if hit is not None and hit[0] == row else [_display(v) for v in row])
        widths = [len(label) for _, label in columns]
        if shown:
            widths = [max(w, max(map(len, col))) for w, col in zip(widths, zip(*shown))]  # noqa: B905
        widths = [min(w, MAX_COLUMN_WIDTH) for w in widths]
        numeric = [key in NUMERIC for key, _ in columns]
        same_layout = widths == self._widths and columns == self.columns

        def line(cells: list[str]) -> str:
            out = []
            for text, width, right in zip(cells, widths, numeric):  # noqa: B905 - one cell per column
                if len(text) > width:
                    text = text[: width - 1] + "…"
                out.append(text.rjust(width) if right else text.ljust(width))
            return " " + "  ".join(out) + " "

        header = line([label for _, label in columns])
        texts: list[str] = []
        new_cache: dict[str, tuple[tuple[Any, ...], list[str], str]] = {}
        for key, row, cells in zip(keys, rows, shown):  # noqa: B905 - same length
            hit = cache.get(key)
            text = hit[2] if same_layout and hit is not None and hit[0] == row else line(cells)
            texts.append(text)
            new_cache[key] = (row, cells, text)
        self._cache = new_cache
        self._widths = widths
        cursor_key = self.cursor_key
        old_texts, old_marks, old_cursor = self.texts, self.marks, self.cursor
        layout_changed = header != self.header or len(texts) != len(self.texts)
        self.columns, self.keys, self.rows, self.texts, self.marks, self.header = (
            columns, keys, rows, texts, marks, header)
        if cursor_key is not None and cursor_key in keys:
            # Follow the selected socket when others come, go or re-sort.
            self.cursor = keys.index(cursor_key) if keys[min(self.cursor, len(keys) - 1)] != cursor_key \
                else self.cursor
        self.cursor = max(0, min(self.cursor, len(keys) - 1))
        width = len(header)
        self.virtual_size = Size(width, len(texts) + 1)
        if layout_changed:
            self.refresh()
            repainted = self.size.height
        else:
            repainted = 0
            top = int(self.scroll_offset.y)
            for y in range(1, self.size.height):
                i = top + y - 1
                if i >= len(texts):
                    break
                was = (old_texts[i], old_marks[i], i == old_cursor)
                if was != (texts[i], marks[i], i == self.cursor):
                    self.refresh_lines(y)
                    repainted += 1
        self.lines_repainted += repainted
        return repainted

    # --- drawing ----------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            style = self.get_component_rich_style("conn-grid--header")
            text = self.header
        else:
            index = int(scroll_y) + y - 1
            if index >= len(self.texts):
                return Strip.blank(width, self.rich_style)
            text = self.texts[index]
            style = self.rich_style
            if index % 2:
                style += self.get_component_rich_style("conn-grid--odd")
            mark = self.marks[index]
            if mark:
                style += self.get_component_rich_style(f"conn-grid--{mark}")
            if index == self.cursor:
                style += self.get_component_rich_style("conn-grid--cursor")
        strip = Strip([Segment(text, style)], len(text))
        return strip.crop(int(scroll_x), int(scroll_x) + width).extend_cell_length(width, style)

    # --- keys -------------------------------------------------------------------
    def _show_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        rows_visible = max(1, self.size.height - 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + rows_visible:
            self.scroll_to(y=self.cursor - rows_visible + 1, animate=False)
        self.refresh()

    def action_move(self, delta: int) -> None:
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        self._show_cursor()

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self.cursor = 0 if where == 0 else max(0, len(self.rows) - 1)
        self._show_cursor()

    def action_pan(self, delta: int) -> None:
        self.scroll_to(x=max(0, self.scroll_offset.x + delta), animate=False)

    def on_click(self, event: Click) -> None:
        if event.y >= 1:
            self.cursor = max(0, min(len(self.rows) - 1, int(self.scroll_offset.y) + event.y - 1))
            self.refresh()



class ConnTable(Vertical):
    """Connection table pane for one host (see the module docstring for keys and probes)."""

    DEFAULT_CSS = """
    ConnTable { height: 1fr; }
    ConnTable > #conn-summary { height: auto; max-height: 6; padding: 0 1; background: $panel; }
    ConnTable > #conn-status { height: 1; padding: 0 1; color: $text-muted; }
    ConnTable > #conn-filter { display: none; height: 1; border: none; padding: 0 1; }
    ConnTable.-filtering > #conn-filter { display: block; }
    ConnTable > #conn-empty { padding: 1 2; color: $text-muted; height: auto; }
    """

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("r", "sort_reverse", "Reverse"),
        Binding("g", "toggle_group", "Group by remote"),
    ]

    def __init__(self, store: Store, host: str = LOCAL_HOST, *, refresh_hz: float = 1.0,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.host = host
        self.refresh_hz = min(2.0, max(0.1, refresh_hz))
        self.grouped = False
        self.sort_column = "state"
        self.sort_reverse = False
        self.filter = ConnFilter()
        self._seen_version = -1
        self._seen_table_ts: float | None = None
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._order_key: tuple[Any, ...] = ()
        self.total_rows = 0
        self.redraws = 0
        """How many refreshes changed the rows (for tests and the benchmark)."""
        self.last_changes = (0, 0, 0)
        """(rows added, rows removed, visible lines repainted) in the last refresh."""

    def compose(self) -> ComposeResult:
        yield Static(id="conn-summary")
        # Disabled (so unfocusable) until "/" opens it: typed keys go to the table's bindings.
        yield Input(placeholder="filter: port:5432 proc:java state:close-wait remote:10.0.0.5 (esc clears)",
                    id="conn-filter", disabled=True)
        yield Static(id="conn-status")
        yield Static("", id="conn-empty")
        yield ConnGrid(id="conn-grid")

    def on_mount(self) -> None:
        # No focus() here: TabbedContent follows focus, so grabbing it would open this tab at start.
        every(self, 1.0 / self.refresh_hz, self.refresh_from_store)
        self.refresh_from_store()

    # --- reading the store -------------------------------------------------
    def _last(self, kind: str) -> Sample | None:
        return self.store.last((self.host, kind, ""))

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_from_store()

    def refresh_from_store(self, force: bool = False) -> None:
        if not force and self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        summary, table = self._last(KIND), self._last(TABLE_KIND)
        lines = summary_lines(summary, self._last("system"))
        self.query_one("#conn-summary", Static).update("\n".join(lines))
        empty = self.query_one("#conn-empty", Static)
        grid = self.query_one(ConnGrid)
        if table is None or not table.ok:
            empty.display = True
            grid.display = False
            if summary is not None and not summary.ok:
                empty.update(f"No socket list: {summary.error}: {summary.message}. "
                             "The probe retries every refresh; on a remote host it needs ss (iproute2) or psutil.")
            else:
                empty.update(f"No connection data for {self.host} yet: start the conns probe "
                             "(ProbeSpec('conns', interval=1.0)); the first snapshot arrives within a second.")
            return
        empty.display = False
        grid.display = True
        if not force and table.ts == self._seen_table_ts:
            self._update_status()
            return
        self._seen_table_ts = table.ts
        self._apply(table)

    def _wanted(self, table: Sample) -> dict[str, tuple[Any, ...]]:
        raw = table.fields.get("rows")
        rows: list[list[Any]] = raw if isinstance(raw, list) else []  # type: ignore[assignment]
        self.total_rows = len(rows)
        matched = rows if self.filter.empty else [r for r in rows if self.filter.match(r)]
        if self.grouped:
            return group_cells(matched)
        return {f"{r[C_PROTO]}|{r[C_LOCAL]}|{r[C_REMOTE]}|{r[9]}": socket_cells(r) for r in matched}

    def _apply(self, table_sample: Sample | None = None) -> None:
        wanted = self._wanted(table_sample) if table_sample is not None else self._shown
        columns = GROUP_COLUMNS if self.grouped else SOCKET_COLUMNS
        order_key = (columns, self.sort_column, self.sort_reverse)
        if wanted == self._shown and order_key == self._order_key:
            self.last_changes = (0, 0, 0)
            self._update_status()
            return
        added = len(wanted.keys() - self._shown.keys())
        removed = len(self._shown.keys() - wanted.keys())
        keys = list(wanted)
        index = next((i for i, (key, _) in enumerate(columns) if key == self.sort_column), None)
        if index is not None:
            keys.sort()  # a stable order for equal values, so rows do not shuffle between refreshes
            keys.sort(key=lambda k: _sort_key(wanted[k][index]), reverse=self.sort_reverse)
        rows = [wanted[k] for k in keys]
        state_col = next((i for i, (key, _) in enumerate(columns) if key == "state"), None)
        who_col = next((i for i, (key, _) in enumerate(columns) if key == "process"), None)
        marks = []
        for row in rows:
            if self.grouped:
                marks.append("warn" if row[3] else "")
            elif state_col is not None and row[state_col] == "CLOSE-WAIT":
                marks.append("warn")
            elif who_col is not None and str(row[who_col]).endswith("(hidden)"):
                marks.append("muted")
            else:
                marks.append("")
        repainted = self.query_one(ConnGrid).set_rows(columns, keys, rows, marks)
        self._shown = wanted
        self._order_key = order_key
        self.last_changes = (added, removed, repainted)
        self.redraws += 1
        self._update_status()

    def _update_status(self) -> None:
        what = "endpoints" if self.grouped else "shown"
        flt = "" if self.filter.empty else f" · filter {self.query_one('#conn-filter', Input).value}"
        arrow = "↓" if self.sort_reverse else "↑"
        self.query_one("#conn-status", Static).update(
            f"{len(self._shown):,} {what} of {self.total_rows:,}{flt} · sort {self.sort_column} {arrow} · "
            "/ filter s sort r rev g group")

    # --- keys ----------------------------------------------------------------
    def action_filter(self) -> None:
        self.add_class("-filtering")
        field = self.query_one("#conn-filter", Input)
        field.disabled = False
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#conn-filter", Input)
        field.value = ""
        self.filter = ConnFilter()
        self._close_filter()
        self.refresh_from_store(force=True)

    @on(Input.Changed, "#conn-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter = ConnFilter.parse(event.value)
        self.refresh_from_store(force=True)

    @on(Input.Submitted, "#conn-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self._close_filter()
        else:
            self.query_one(ConnGrid).focus()

    def _close_filter(self) -> None:
        self.remove_class("-filtering")
        self.query_one("#conn-filter", Input).disabled = True
        self.query_one(ConnGrid).focus()

    def action_sort_next(self) -> None:
        order = GROUP_SORTABLE if self.grouped else SORTABLE
        index = order.index(self.sort_column) + 1 if self.sort_column in order else 0
        self.sort_column = order[index % len(order)]
        # Numbers read best largest first; names alphabetically.
        self.sort_reverse = self.sort_column in NUMERIC
        self._apply()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._apply()

    def action_toggle_group(self) -> None:
        self.grouped = not self.grouped
        self.sort_column = "sockets" if self.grouped else "state"
        self.sort_reverse = self.grouped
        self.refresh_from_store(force=True)

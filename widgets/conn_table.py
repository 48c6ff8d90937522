"""ConnTable: every socket on a host, with summaries, filtering, sorting and grouping.

Needs the ``conns`` probe: ``ProbeSpec("conns", interval=1.0)`` (summary
Samples of kind ``conns`` and table snapshots of kind ``conns_table``). If a
``system`` probe runs for the same host, its CPU/memory/load/fd figures are
shown as a host-pressure line.

Keys: ``/`` filter (``port:5432 proc:java state:close-wait remote:10.0.0.5``,
bare words match anywhere), ``escape`` clear the filter, ``s`` next sort
column, ``r`` reverse, ``g`` group by remote endpoint.

Redraws only what changed: rows are keyed by socket, so a refresh removes
the sockets that went away, adds new ones and updates only the cells whose
values changed; unchanged rows are not touched. A large turnover (more than
``REBUILD_FRACTION`` of the rows) rebuilds the table at once instead, which is
cheaper than thousands of single removals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from console.store import Store
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

REBUILD_FRACTION = 0.2

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
    if isinstance(value, Text):
        return (1, value.plain)
    if isinstance(value, (int, float)):
        return (0, value)
    return (2, str(value))


def _cell(value: Any) -> Any:
    # Text, not str: DataTable would read "[...]" in a process name as markup.
    return Text(value) if isinstance(value, str) else value


def _fmt(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def summary_lines(summary: Sample | None, system: Sample | None) -> list[str]:
    """The summary above the table, as Textual markup lines (theme variables only)."""
    if summary is None:
        return []
    if not summary.ok:
        return [f"[$error]connections: {summary.error}: {summary.message}[/]"]
    f = summary.fields
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
        s = system.fields
        lines.append(f"host cpu {s.get('cpu_percent')}% · mem {s.get('mem_percent')}% · load {s.get('load1')} "
                     f"· files {_fmt(s.get('open_fds'))}/{_fmt(s.get('fd_max'))}")
    hidden = f.get("hidden_sockets") or 0
    if hidden or (f.get("euid") not in (0, None) and f.get("unreadable_processes")):
        uids = ", ".join(str(u) for u in (f.get("hidden_uids") or []))  # type: ignore[union-attr]
        lines.append(f"[$warning]{hidden} sockets of processes this user cannot read"
                     f"{f' (uid {uids})' if uids else ''}: marked hidden; root would show more[/]")
    return lines


def _tone(text: str, pct: object) -> str:
    if isinstance(pct, (int, float)) and pct >= 95:
        return f"[$error]{text}[/]"
    if isinstance(pct, (int, float)) and pct >= 80:
        return f"[$warning]{text}[/]"
    return text


class ConnTable(Vertical):
    """Connection table pane for one host (see the module docstring for keys and probes)."""

    DEFAULT_CSS = """
    ConnTable { height: 1fr; }
    ConnTable > #conn-summary { height: auto; max-height: 6; padding: 0 1; background: $panel; }
    ConnTable > #conn-status { height: 1; padding: 0 1; color: $text-muted; }
    ConnTable > #conn-filter { display: none; height: 1; border: none; padding: 0 1; }
    ConnTable.-filtering > #conn-filter { display: block; }
    ConnTable > #conn-empty { padding: 1 2; color: $text-muted; }
    ConnTable > DataTable { height: 1fr; }
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
        self._columns: tuple[tuple[str, str], ...] = ()
        self.total_rows = 0
        self.redraws = 0
        """How many refreshes changed the table (for tests and the benchmark)."""
        self.last_changes = (0, 0, 0)
        """(added, removed, cells updated) in the last refresh."""

    def compose(self) -> ComposeResult:
        yield Static(id="conn-summary")
        # Disabled (so unfocusable) until "/" opens it: typed keys go to the table's bindings.
        yield Input(placeholder="filter: port:5432 proc:java state:close-wait remote:10.0.0.5 (esc clears)",
                    id="conn-filter", disabled=True)
        yield Static(id="conn-status")
        yield Static("", id="conn-empty")
        table: DataTable[Any] = DataTable(id="conn-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        self.query_one("#conn-table", DataTable).focus()
        self.set_interval(1.0 / self.refresh_hz, self.refresh_from_store)
        self.refresh_from_store()

    # --- reading the store -------------------------------------------------
    def _last(self, kind: str) -> Sample | None:
        return self.store.last((self.host, kind, ""))

    def refresh_from_store(self, force: bool = False) -> None:
        if not force and self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        summary, table = self._last(KIND), self._last(TABLE_KIND)
        lines = summary_lines(summary, self._last("system"))
        self.query_one("#conn-summary", Static).update("\n".join(lines))
        empty = self.query_one("#conn-empty", Static)
        if table is None or not table.ok:
            empty.display = True
            if summary is not None and not summary.ok:
                empty.update(f"No socket list: {summary.error}: {summary.message}. "
                             "The probe retries every refresh; on a remote host it needs ss (iproute2) or psutil.")
            else:
                empty.update(f"No connection data for {self.host} yet: start the conns probe "
                             "(ProbeSpec('conns', interval=1.0)); the first snapshot arrives within a second.")
            return
        empty.display = False
        if not force and table.ts == self._seen_table_ts:
            self._update_status()
            return
        self._seen_table_ts = table.ts
        self._apply(table)

    def _wanted(self, table: Sample) -> dict[str, tuple[Any, ...]]:
        rows = table.fields.get("rows")
        rows = rows if isinstance(rows, list) else []
        self.total_rows = len(rows)
        matched = rows if self.filter.empty else [r for r in rows if self.filter.match(r)]
        if self.grouped:
            return group_cells(matched)
        return {f"{r[C_PROTO]}|{r[C_LOCAL]}|{r[C_REMOTE]}|{r[9]}": socket_cells(r) for r in matched}

    def _apply(self, table_sample: Sample) -> None:
        wanted = self._wanted(table_sample)
        table = self.query_one("#conn-table", DataTable)
        columns = GROUP_COLUMNS if self.grouped else SOCKET_COLUMNS
        shown = self._shown
        removed = [k for k in shown if k not in wanted]
        added = [k for k in wanted if k not in shown]
        with self.app.batch_update():
            if columns != self._columns:
                table.clear(columns=True)
                for key, label in columns:
                    table.add_column(label, key=key)
                self._columns = columns
                shown = {}
                removed, added = [], list(wanted)
            updated = 0
            if len(removed) > REBUILD_FRACTION * max(1, len(shown)) and len(removed) > 50:
                # Many sockets went away at once: one rebuild beats many O(n) removals.
                table.clear()
                added, removed = list(wanted), []
                shown = {}
            for key in removed:
                table.remove_row(key)
            for key in wanted.keys() & shown.keys():
                old, new = shown[key], wanted[key]
                if old != new:
                    for (col, _), before, after in zip(columns, old, new):  # noqa: B905 - same columns
                        if before != after:
                            table.update_cell(key, col, _cell(after))
                            updated += 1
            if added:
                for key in added:
                    table.add_row(*(_cell(v) for v in wanted[key]), key=key)
            self._shown = wanted
            if added or updated or removed:
                self._sort(table)
        self.last_changes = (len(added), len(removed), updated)
        if added or removed or updated:
            self.redraws += 1
        self._update_status()

    def _sort(self, table: DataTable[Any]) -> None:
        if self.sort_column in {key for key, _ in self._columns}:
            table.sort(self.sort_column, key=_sort_key, reverse=self.sort_reverse)

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
            self.query_one("#conn-table", DataTable).focus()

    def _close_filter(self) -> None:
        self.remove_class("-filtering")
        self.query_one("#conn-filter", Input).disabled = True
        self.query_one("#conn-table", DataTable).focus()

    def action_sort_next(self) -> None:
        order = GROUP_SORTABLE if self.grouped else SORTABLE
        index = order.index(self.sort_column) + 1 if self.sort_column in order else 0
        self.sort_column = order[index % len(order)]
        # Numbers read best largest first; names alphabetically.
        self.sort_reverse = self.sort_column in {"rtt", "retrans", "recvq", "sendq", "idle", "sockets",
                                                 "close_wait", "time_wait"}
        self._sort(self.query_one("#conn-table", DataTable))
        self._update_status()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._sort(self.query_one("#conn-table", DataTable))
        self._update_status()

    def action_toggle_group(self) -> None:
        self.grouped = not self.grouped
        self.sort_column = "sockets" if self.grouped else "state"
        self.sort_reverse = self.grouped
        self.refresh_from_store(force=True)

"""The system pane: is this host itself under pressure? CPU, memory, load, fds, top processes.

The fd line leads with the process nearest its own RLIMIT_NOFILE (from the
conns probe's ``fd_top``, the figure the Conns tab shows): that per-process
limit, usually 1024 or 65536, is what makes accept() and connect() fail with
EMFILE. The host-wide count against fs.file-max follows it; that limit is
in the millions and almost never the one that bites.
"""

from __future__ import annotations

from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from console.engine.store import Store
from probes.samples import LOCAL_HOST, JSONValue, Sample
from widgets.format import short
from widgets.visibility import every


def _bar(percent: float, width: int = 10) -> str:
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def _level(percent: float) -> str:
    return "$error" if percent >= 90 else "$warning" if percent >= 75 else "$success"


def _level_word(percent: float) -> str:
    """What the bar's colour says, in a symbol and a word (colour alone is lost without colour)."""
    return " [b $error]✖ CRITICAL[/]" if percent >= 90 else " [b $warning]▲ HIGH[/]" if percent >= 75 else ""


def fd_line(conns: Sample | None, system: dict[str, JSONValue]) -> str:
    """The FDs line: the process nearest its own fd limit, then the host-wide count (markup)."""
    host_wide = f"host {system.get('open_fds')}/{system.get('fd_max')}"
    top = conns.fields.get("fd_top") if conns is not None and conns.ok else None
    if not isinstance(top, list) or not top or not isinstance(top[0], dict):
        return f"FDs  [dim]nearest a limit: waiting for the connections probe[/] · {host_wide}"
    worst = top[0]
    name = escape(short(str(worst.get("name") or "?"), 12))
    fds, limit, pct = worst.get("fds"), worst.get("limit"), worst.get("pct")
    if isinstance(pct, (int, float)) and not isinstance(pct, bool):
        nearest = f"[{_level(float(pct))}]{name}({worst.get('pid')}) {fds}/{limit} ({pct:.0f}%)[/] nearest its limit"
    else:  # no limit readable (another user's process, or unlimited): the biggest holder
        nearest = f"{name}({worst.get('pid')}) {fds} open, limit unknown"
    return f"FDs  {nearest} · {host_wide}"


class SystemPane(Static):
    """Reads the latest `system` Sample for its host (and `conns` for the fd line); needs those probes running."""

    DEFAULT_CSS = """
    SystemPane {
        height: auto;
        max-height: 9;
        border: round $secondary;
        border-title-color: $secondary;
        padding: 0 1;
    }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, store: Store, host: str = LOCAL_HOST, *, id: str | None = None) -> None:
        super().__init__("waiting for the first system reading (about 1 s)…", id=id)
        self.store = store
        self.host = host
        self._seen_version = -1
        self._shown = ""
        self.border_title = f"System ({host})"

    def on_mount(self) -> None:
        every(self, 1.0, self.refresh_figures)
        self.call_after_refresh(self.refresh_figures)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_figures()

    def refresh_figures(self) -> None:
        if self.paused or self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        sample = self.store.last((self.host, "system", ""))
        if sample is None:
            return
        if not sample.ok:
            self.update(f"[$error]system probe failed: {escape(sample.message or sample.error or '')}[/]")
            return
        f = sample.fields
        cpu = float(f.get("cpu_percent") or 0.0)  # type: ignore[arg-type]
        mem = float(f.get("mem_percent") or 0.0)  # type: ignore[arg-type]
        lines = [
            f"CPU  [{_level(cpu)}]{_bar(cpu)}[/] {cpu:5.1f}%{_level_word(cpu)}   load {f.get('load1')} "
            f"{f.get('load5')} {f.get('load15')} ({f.get('cpu_count')} cores, {f.get('procs')} processes)",
            f"MEM  [{_level(mem)}]{_bar(mem)}[/] {mem:5.1f}%{_level_word(mem)}   {f.get('mem_used_mb')}/"
            f"{f.get('mem_total_mb')} MB   swap {f.get('swap_percent')}%",
            fd_line(self.store.last((self.host, "conns", "")), f),
        ]
        top = f.get("top")
        if isinstance(top, list) and top:
            lines.append("[dim]top CPU:[/] " + "  ".join(
                f"{escape(short(str(p.get('name')), 14))}({p.get('pid')}) {p.get('cpu')}%"
                for p in top[:3] if isinstance(p, dict)))
        text = "\n".join(lines)
        if text != self._shown:
            # Same number of lines: the pane keeps its size, so no layout pass of the whole screen.
            same_height = text.count("\n") == self._shown.count("\n") and bool(self._shown)
            self._shown = text
            self.update(text, layout=not same_height)
